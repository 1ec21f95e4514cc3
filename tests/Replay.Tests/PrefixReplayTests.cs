using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Session;
using Replayvisor.Engine.Trace;

namespace Replayvisor.Replay.Tests;

/// <summary>
/// A trace that ends early replays exactly the events it holds (docs/record-replay.md "Prefixes"),
/// and the end of a complete replay is checked against the recording's summary.
/// </summary>
public class PrefixReplayTests
{
    private static readonly Lazy<byte[]> SchedChaos = new(() => Recordings.Record("sched", true, chaos: 3).Trace);
    private static readonly Lazy<byte[]> SchedHost = new(() => Recordings.Record("sched", false, ClockKind.Host, chaos: 5, stdin: "x\n"u8.ToArray()).Trace);
    private static readonly Lazy<byte[]> EchoHost = new(() => Recordings.Record("echo", false, ClockKind.Host).Trace);

    public static TheoryData<string> Traces() => ["sched-chaos", "sched-host", "echo-host"];

    private static byte[] Trace(string name) => name switch
    {
        "sched-chaos" => SchedChaos.Value,
        "sched-host" => SchedHost.Value,
        _ => EchoHost.Value,
    };

    /// <summary>
    /// Cut after every chunk, as a killed recorder leaves the file (the first cut holds no events at
    /// all; under the host clock the machine reads the clock before its first instruction): each
    /// prefix verifies exactly the check events it holds and reports where it ends, never a divergence.
    /// </summary>
    [Theory]
    [MemberData(nameof(Traces))]
    public void EveryChunkBoundaryIsAnExactPrefix(string name)
    {
        byte[] full = Trace(name);
        using var reader = TraceReader.Open(new MemoryStream(full));
        Assert.True(reader.Index.Count >= 2, $"{name}: {reader.Index.Count} chunks");
        for (int held = 0; held < reader.Index.Count; held++)
        {
            var r = Recordings.Replay(full.AsSpan(0, (int)reader.Index[held].Offset).ToArray());
            Assert.True(r.Divergence == null, $"{name}, {held} chunks: {r.Report}");
            Assert.True(r.PrefixOnly);
            Assert.Null(r.Damage);
            long checks = reader.Index.Take(held).SelectMany(reader.ReadChunk).Count(e => e is CheckEvent);
            Assert.Equal(checks, r.EventsVerified);
            Assert.Equal(held == 0 ? 0 : reader.Index[held - 1].LastIcount, r.RecordedIcount);
        }
    }

    /// <summary>A prefix is not a way to hide a divergence: a changed event inside it is still reported.</summary>
    [Fact]
    public void AChangedEventInsideAPrefixStillDiverges()
    {
        HypercallEvent? changed = null;
        byte[] bad = Recordings.Rewrite(SchedChaos.Value, e =>
        {
            if (changed == null && e is HypercallEvent { Icount: > 0 } h) return changed = h with { Result = h.Result + 1 };
            return e;
        });
        using var reader = TraceReader.Open(new MemoryStream(bad));
        int last = reader.Index.Count - 1;
        Assert.True(changed!.Icount < reader.Index[last].FirstIcount);
        var r = Recordings.Replay(bad.AsSpan(0, (int)reader.Index[last].Offset).ToArray());
        Assert.NotNull(r.Divergence);
        Assert.Equal(changed, r.Divergence!.Expected);
    }

    /// <summary>A prefix whose last input is never taken by the replay diverges at its end instead of passing as "used up".</summary>
    [Fact]
    public void AnInputThePrefixNeverTakesDiverges()
    {
        // Move the first chaos delay well past where its timer is armed; keep everything before it.
        AsyncEvent? moved = null;
        byte[] bad = Recordings.Rewrite(SchedChaos.Value, e =>
        {
            if (moved == null && e is AsyncEvent { Kind: AsyncKind.ChaosDelay } a && a.Icount > 0) return moved = a with { Icount = a.Icount + 7 };
            return e;
        });
        using var reader = TraceReader.Open(new MemoryStream(bad));
        int held = Enumerable.Range(1, reader.Index.Count - 1).First(i => reader.Index[i - 1].LastIcount >= moved!.Icount);
        var r = Recordings.Replay(bad.AsSpan(0, (int)reader.Index[held].Offset).ToArray());
        Assert.NotNull(r.Divergence);
    }

    [Fact]
    public void TheFinalStateHashIsChecked()
    {
        byte[] bad = Recordings.Rewrite(SchedChaos.Value, e => e, s => s with { FinalStateHash = new byte[16] });
        var r = Recordings.Replay(bad);
        Assert.NotNull(r.Divergence);
        Assert.Contains("final machine state differs", r.Divergence!.What);
        Assert.Null(Recordings.Replay(SchedChaos.Value).Divergence);
    }

    [Fact]
    public void TheGuestTimeIsChecked()
    {
        byte[] bad = Recordings.Rewrite(SchedChaos.Value, e => e, s => s with { GuestTimeNs = s.GuestTimeNs + 1 });
        var r = Recordings.Replay(bad);
        Assert.NotNull(r.Divergence);
        Assert.Contains("guest time", r.Divergence!.What);
    }

    [Fact]
    public void TheFinalCountAndExitAreChecked()
    {
        byte[] bad = Recordings.Rewrite(SchedChaos.Value, e => e, s => s with { Exit = ExitKind.DomainCrashed });
        var r = Recordings.Replay(bad);
        Assert.NotNull(r.Divergence);
        Assert.Contains("the recording ended at instruction", r.Divergence!.What);
        Assert.Equal(MachineExitKind.PoweredOff, r.Exit.Kind);
    }
}
