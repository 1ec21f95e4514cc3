using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Session;
using Replayvisor.Engine.Trace;
using Replayvisor.Engine.Xen;

namespace Replayvisor.Replay.Tests;

/// <summary>
/// Several vCPUs (docs/xen-model.md "Several vCPUs"): the smp guest brings up vCPUs, exchanges
/// IPIs and sleeps on per-vCPU timers; it records and replays bit-exactly, every event names its
/// vCPU, and snapshots and state hashes cover the vCPUs that are not running.
/// </summary>
public class SmpTests
{
    private static XenMachine Machine(bool pae, int vcpus, CpuTier tier = CpuTier.Compiled) =>
        new(Guests.Image("smp", pae), new XenMachineOptions { MemoryMiB = 32, Tier = tier, Hypervisor = new HypervisorOptions { VcpuCount = vcpus } });

    private static (MachineExit Exit, string Console) RunToEnd(XenMachine m)
    {
        var console = new BufferConsoleSink();
        m.Hypervisor.ConsoleSink = console;
        return (m.Run(50_000_000), console.Text);
    }

    [Theory]
    [InlineData(false, 2, "4 IPI round trips, reply sum 1816, timers woke in order 1\n")]
    [InlineData(true, 2, "4 IPI round trips, reply sum 1816, timers woke in order 1\n")]
    [InlineData(false, 4, "12 IPI round trips, reply sum 5496, timers woke in order 1 2 3\n")]
    [InlineData(true, 4, "12 IPI round trips, reply sum 5496, timers woke in order 1 2 3\n")]
    public void TheGuestBringsUpEveryVcpuAndPasses(bool pae, int vcpus, string summary)
    {
        var (exit, text) = RunToEnd(Machine(pae, vcpus));
        Assert.True(exit.Kind == MachineExitKind.PoweredOff, $"{exit}\n{text}");
        Assert.Contains($"smp: {vcpus} vCPUs\n", text);
        Assert.Contains("smp: " + summary, text);
        Assert.Contains("ALL PASS smp", text);
        Assert.DoesNotContain("FAIL", text);
    }

    [Theory]
    [InlineData(false, ClockKind.Virtual)]
    [InlineData(true, ClockKind.Virtual)]
    [InlineData(false, ClockKind.Host)]
    [InlineData(true, ClockKind.Host)]
    public void RecordsAndReplaysBitExactlyWithFourVcpus(bool pae, ClockKind clock)
    {
        var rec = Recordings.Record("smp", pae, clock, checkpointInterval: 20_000, vcpus: 4);
        Assert.True(rec.Result.Exit.Kind == MachineExitKind.PoweredOff, $"{rec.Result.Exit}\n{rec.Console}");
        Assert.Contains("ALL PASS smp", rec.Console);
        var r = Recordings.Replay(rec.Trace);
        Assert.True(r.Divergence == null, r.Report);
        Assert.Equal(rec.Result.Exit.Icount, r.Exit.Icount);
        Assert.Equal(MachineExitKind.PoweredOff, r.Exit.Kind);

        using var reader = TraceReader.Open(new MemoryStream(rec.Trace));
        Assert.Equal("4", reader.Header.GetOption(RunOptionKeys.Vcpus));
        var events = reader.ReadEvents().ToList();
        // Every secondary vCPU made hypercalls of its own; checkpoints land on whichever vCPU runs.
        foreach (int v in new[] { 1, 2, 3 })
            Assert.Contains(events, e => e is HypercallEvent h && h.Vcpu == v);
        Assert.All(events.OfType<UpcallEvent>(), u => Assert.Equal(0, u.Vcpu)); // only vCPU 0 takes upcalls
        if (clock == ClockKind.Host) Assert.Contains(events, e => e is TimeEvent);
    }

    [Fact]
    public void AnEventOnTheWrongVcpuIsADivergence()
    {
        var rec = Recordings.Record("smp", true, vcpus: 2);
        bool changed = false;
        byte[] tampered = Recordings.Rewrite(rec.Trace, e =>
        {
            if (changed || e is not HypercallEvent { Vcpu: 1 } h) return e;
            changed = true;
            return h with { Vcpu = 0 };
        });
        Assert.True(changed);
        var r = Recordings.Replay(tampered);
        Assert.NotNull(r.Divergence);
    }

    [Fact]
    public void OldTracesReadWithEveryEventOnVcpuZero()
    {
        byte[] trace = File.ReadAllBytes(Path.Combine(Guests.RepoRoot, "traces", "v2", "events.rvt") /* recorded before the vcpus option */);
        using var reader = TraceReader.Open(new MemoryStream(trace));
        Assert.Null(reader.Header.GetOption(RunOptionKeys.Vcpus));
        Assert.Equal(1, RunOptions.FromHeader(reader.Header).Vcpus);
        Assert.All(reader.ReadEvents(), e => Assert.Equal(0, VcpuStamp.Of(e)));
    }

    [Fact]
    public void EveryTierSchedulesTheVcpusIdentically()
    {
        byte[] Hash(CpuTier tier)
        {
            var m = Machine(true, 4, tier);
            var (exit, _) = RunToEnd(m);
            Assert.Equal(MachineExitKind.PoweredOff, exit.Kind);
            return [.. m.StateHash(), .. BitConverter.GetBytes(m.Icount)];
        }
        var expected = Hash(CpuTier.Compiled);
        foreach (var tier in Enum.GetValues<CpuTier>()) Assert.Equal(expected, Hash(tier));
    }

    [Fact]
    public void ASnapshotWithParkedVcpusRestoresExactlyAndItsHashCoversThem()
    {
        var m = Machine(false, 4);
        m.Run(185_000); // the secondaries are up and parked while vCPU 0 sends its first tokens
        Assert.True(m.Hypervisor.Smp);
        int parked = Enumerable.Range(0, 4).Count(i => m.Hypervisor.Parked(i) != null);
        Assert.True(parked >= 2, $"{parked} vCPUs parked");
        var s = m.Snapshot();
        byte[] at = m.StateHash();
        var end1 = m.Run(50_000_000);
        byte[] final1 = m.StateHash();
        m.Restore(s);
        Assert.Equal(at, m.StateHash());
        var end2 = m.Run(50_000_000);
        Assert.Equal(end1, end2);
        Assert.Equal(final1, m.StateHash());

        // A register of a parked vCPU is state: changing it changes the hash.
        int id = Enumerable.Range(0, 4).First(i => s.Xen.Parked[i] != null);
        var p = s.Xen.Parked[id]!;
        var gpr = (uint[])p.Cpu.Gpr.Clone();
        gpr[0] ^= 1;
        var parkedCopy = (ParkedVcpu?[])s.Xen.Parked.Clone();
        parkedCopy[id] = p with { Cpu = p.Cpu with { Gpr = gpr } };
        m.Restore(s with { Xen = s.Xen with { Parked = parkedCopy } });
        Assert.NotEqual(at, m.StateHash());
    }
}
