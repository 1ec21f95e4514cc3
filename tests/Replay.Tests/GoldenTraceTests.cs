using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Trace;

namespace Replayvisor.Replay.Tests;

/// <summary>Every committed golden trace (traces/*.rvt, made by traces/record.sh) still replays bit-exactly.</summary>
public class GoldenTraceTests
{
    public static IEnumerable<object[]> Traces() =>
        Directory.GetFiles(Path.Combine(Guests.RepoRoot, "traces"), "*.rvt").Order(StringComparer.Ordinal).Select(f => new object[] { Path.GetFileName(f) });

    /// <summary>Every golden trace under every CPU tier.</summary>
    public static IEnumerable<object[]> TracesAndTiers() =>
        Traces().SelectMany(t => Enum.GetValues<CpuTier>().Select(tier => new object[] { t[0], tier }));

    [Fact]
    public void TheGoldenTracesArePresent()
    {
        var names = Traces().Select(t => (string)t[0]).ToArray();
        Assert.True(names.Length >= 10, "traces/ should hold the golden traces; run traces/record.sh");
        foreach (string expected in new[] { "pagetables.rvt", "failsafe.rvt", "events.rvt", "multicall.rvt", "sched-chaos.rvt", "sched-host.rvt", "echo.rvt",
                     "hello.rvt", "segments.rvt", "crash.rvt", "fpu.rvt" })
            Assert.Contains(expected, names);
    }

    /// <summary>How each golden run ends: crash and fpu end on purpose without powering off (guests/README.md).</summary>
    private static MachineExitKind ExpectedExit(string name) => name switch
    {
        "crash.rvt" => MachineExitKind.Crashed,
        "fpu.rvt" => MachineExitKind.Unsupported,
        _ => MachineExitKind.PoweredOff,
    };

    [Theory]
    [MemberData(nameof(TracesAndTiers))]
    public void ReplaysBitExactly(string name, CpuTier tier)
    {
        byte[] trace = File.ReadAllBytes(Path.Combine(Guests.RepoRoot, "traces", name));
        var r = Recordings.Replay(trace, tier: tier);
        Assert.True(r.Divergence == null, $"{name}: {r.Report}");
        Assert.True(r.TraceComplete, $"{name} is incomplete");
        Assert.Equal(r.Recorded!.FinalIcount, r.Exit.Icount);
        Assert.Equal(ExpectedExit(name), r.Exit.Kind);
        using var reader = TraceReader.Open(new MemoryStream(trace));
        Assert.Equal(3, reader.FormatVersion); // golden traces hold no keyframes: format 3 (docs/trace-format.md "Versions")
        Assert.Contains(reader.ReadEvents(), e => e is CheckpointEvent);
    }
}

/// <summary>
/// Traces written by format version 2 (MessagePack events chunks; traces/v2 holds the golden
/// traces as they were before format 3's compact events chunks) stay readable and replay bit-exactly.
/// </summary>
public class VersionTwoTraceTests
{
    public static IEnumerable<object[]> Traces() =>
        Directory.GetFiles(Path.Combine(Guests.RepoRoot, "traces", "v2"), "*.rvt").Order(StringComparer.Ordinal).Select(f => new object[] { Path.GetFileName(f) });

    [Fact]
    public void EveryCurrentGoldenTraceHasAVersionTwoCopy() =>
        Assert.Equal(GoldenTraceTests.Traces().Select(t => (string)t[0]), Traces().Select(t => (string)t[0]));

    [Theory]
    [MemberData(nameof(Traces))]
    public void ReplaysBitExactly(string name)
    {
        byte[] trace = File.ReadAllBytes(Path.Combine(Guests.RepoRoot, "traces", "v2", name));
        using var reader = TraceReader.Open(new MemoryStream(trace));
        Assert.Equal(2, reader.FormatVersion);
        Assert.True(reader.Complete, $"{name} is incomplete");
        var r = Recordings.Replay(trace);
        Assert.True(r.Divergence == null, $"{name}: {r.Report}");
        Assert.Equal(r.Recorded!.FinalIcount, r.Exit.Icount);
    }
}

/// <summary>Traces written by format version 1 (16-byte chunk headers, no header chain) stay readable and replay bit-exactly.</summary>
public class VersionOneTraceTests
{
    public static IEnumerable<object[]> Traces() =>
        Directory.GetFiles(Path.Combine(Guests.RepoRoot, "traces", "v1"), "*.rvt").Order(StringComparer.Ordinal).Select(f => new object[] { Path.GetFileName(f) });

    [Theory]
    [MemberData(nameof(Traces))]
    public void ReplaysBitExactly(string name)
    {
        byte[] trace = File.ReadAllBytes(Path.Combine(Guests.RepoRoot, "traces", "v1", name));
        using var reader = TraceReader.Open(new MemoryStream(trace));
        Assert.Equal(1, reader.FormatVersion);
        Assert.True(reader.Complete, $"{name} is incomplete");
        var r = Recordings.Replay(trace);
        Assert.True(r.Divergence == null, $"{name}: {r.Report}");
        Assert.Equal(r.Recorded!.FinalIcount, r.Exit.Icount);
        Assert.Equal(MachineExitKind.PoweredOff, r.Exit.Kind);
    }

    [Fact]
    public void ACutVersionOneTraceReadsItsCompleteChunks()
    {
        byte[] trace = File.ReadAllBytes(Path.Combine(Guests.RepoRoot, "traces", "v1", "sched-host.rvt"));
        using var full = TraceReader.Open(new MemoryStream(trace));
        int all = full.ReadEvents().Count();
        using var cut = TraceReader.Open(new MemoryStream(trace[..^20]));
        Assert.False(cut.Complete);
        Assert.Null(cut.Damage);
        Assert.Equal(all, cut.ReadEvents().Count());
    }
}
