using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Xen;
using Replayvisor.Engine.Time;

namespace Replayvisor.Engine.Tests.Xen.State;

/// <summary>XenMachine.Snapshot/Restore: a resumed run continues exactly as the original did.</summary>
public class SnapshotRestoreTests
{
    private const ulong N = 300_000, M = 700_000;

    private sealed record Outcome(MachineExit Exit, byte[] Hash, string Console, List<string> Events);

    private static (XenMachine M, BufferConsoleSink Sink, EventLog Log) Attach(XenMachine m)
    {
        var sink = new BufferConsoleSink();
        var log = new EventLog();
        m.Hypervisor.ConsoleSink = sink;
        m.Hypervisor.Observer = log;
        return (m, sink, log);
    }

    private static Outcome RunFor(XenMachine m, BufferConsoleSink sink, EventLog log, ulong count)
    {
        int consoleFrom = sink.ToArray().Length, eventsFrom = log.Lines.Count;
        var exit = m.Run(count);
        return new Outcome(exit, m.StateHash(), System.Text.Encoding.ASCII.GetString(sink.ToArray()[consoleFrom..]), log.Lines[eventsFrom..]);
    }

    private static void AssertSame(Outcome expected, Outcome actual)
    {
        Assert.Equal(expected.Exit, actual.Exit);
        Assert.Equal(expected.Console, actual.Console);
        Assert.Equal(expected.Events, actual.Events);
        Assert.Equal(expected.Hash, actual.Hash);
    }

    private static (XenMachine M, BufferConsoleSink Sink, EventLog Log) Started(bool pae)
    {
        var (m, sink, log) = Attach(TickerGuest.Machine(pae));
        TickerGuest.Decorate(m);
        var r = m.Run(N - m.Icount);
        Assert.Equal(MachineExitKind.InstructionLimit, r.Kind);
        Assert.Equal(N, m.Icount);
        return (m, sink, log);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ResumedRunContinuesIdentically(bool pae)
    {
        var (m, sink, log) = Started(pae);
        // The state being snapshotted really has the interesting parts.
        var hv = m.Hypervisor;
        Assert.NotEqual(0ul, hv.Vcpu.SingleshotNs);
        Assert.NotEqual(0u, hv.Vcpu.VirqPort[Hypervisor.VirqTimer]);
        Assert.NotEqual(0u, hv.Vcpu.Traps[6].Address);
        Assert.True(m.Mm.Frames.IsPinned(TickerGuest.FreeMfn(m, 0)));
        Assert.Equal(512u, m.Mm.GdtEntries);
        Assert.NotEmpty(hv.Events.PendingUnmaskedPorts().Length == 0 ? PendingPorts(hv) : hv.Events.PendingUnmaskedPorts());
        Assert.True(hv.Console.PendingRingInput > 0);
        Assert.True(((VirtualClock)m.Clock).IdleNs > 0, "the guest has blocked and the clock idled");

        byte[] atSnapshot = m.StateHash();
        var snap = m.Snapshot();
        var first = RunFor(m, sink, log, M);
        Assert.Equal(MachineExitKind.InstructionLimit, first.Exit.Kind);
        Assert.NotEqual(atSnapshot, first.Hash);
        Assert.NotEmpty(first.Console);
        Assert.Contains(first.Events, e => e.Contains("upcall", StringComparison.Ordinal));

        m.Restore(snap);
        Assert.Equal(atSnapshot, m.StateHash());
        Assert.Equal(N, m.Icount);
        AssertSame(first, RunFor(m, sink, log, M));

        // The snapshot is plain data: it survived the runs and restores again.
        m.Restore(snap);
        Assert.Equal(atSnapshot, m.StateHash());
        AssertSame(first, RunFor(m, sink, log, M));
    }

    private static uint[] PendingPorts(Hypervisor hv)
    {
        var ports = new List<uint>();
        for (uint p = 0; p < EventChannels.NrPorts; p++) if (hv.SharedInfo.TestPending(p)) ports.Add(p);
        return [.. ports];
    }

    [Fact]
    public void SnapshotRestoresIntoAnotherMachineBuiltTheSameWay()
    {
        var (m, sink, log) = Started(pae: true);
        var snap = m.Snapshot();
        var first = RunFor(m, sink, log, M);

        var (other, otherSink, otherLog) = Attach(TickerGuest.Machine(pae: true));
        Assert.NotEqual(m.StateHash(), other.StateHash());
        other.Restore(snap);
        AssertSame(first, RunFor(other, otherSink, otherLog, M));
    }

    [Fact]
    public void SnapshotSharesNothingWithTheMachine()
    {
        var (m, _, _) = Started(pae: true);
        var snap = m.Snapshot();
        byte[] h = m.StateHash();
        // Mutating the live machine does not reach the snapshot ...
        m.Hypervisor.Vcpu.Traps[6].Address ^= 1;
        m.Hypervisor.Vcpu.VirqPort[5] = 9;
        m.Hypervisor.Events[100].State = PortState.Unbound;
        m.Cpu.Memory.Write8(0x5000, 0x5A);
        m.Restore(snap);
        Assert.Equal(h, m.StateHash());
        // ... and mutating the live machine after a restore does not reach the snapshot either.
        m.Hypervisor.Vcpu.DebugRegs[0] = 0x1234;
        m.Restore(snap);
        Assert.Equal(h, m.StateHash());
        Assert.NotSame(snap.Xen.Vcpus[0], m.Hypervisor.Vcpu);
    }

    [Fact]
    public void RunSplitAnywhereGivesTheSameState()
    {
        var (a, sinkA, logA) = Started(pae: true);
        var whole = RunFor(a, sinkA, logA, M);

        var (b, sinkB, logB) = Started(pae: true);
        int from = logB.Lines.Count, consoleFrom = sinkB.ToArray().Length;
        foreach (ulong step in new ulong[] { 1, 999, 33_333, 100_000, 17 })
            Assert.Equal(MachineExitKind.InstructionLimit, b.Run(step).Kind);
        b.Run(N + M - b.Icount);
        Assert.Equal(a.Icount, b.Icount);
        Assert.Equal(whole.Events, logB.Lines[from..]);
        Assert.Equal(whole.Console, System.Text.Encoding.ASCII.GetString(sinkB.ToArray()[consoleFrom..]));
        Assert.Equal(whole.Hash, b.StateHash());
    }
}
