using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Trace;
using Replayvisor.Replay.Stepping;
using Replayvisor.Replay.TimeTravel;

namespace Replayvisor.Replay.Tests.TimeTravel;

/// <summary>
/// Two deliveries at one count (guests/stacked: an int3 through a trap gate with an event pending, so
/// Xen bounces the #BP and then, on the same exit, the upcall over it): positions (N, 0), (N, 1),
/// (N, 2) are three states, stepi visits each and reverse-stepi and reverse-continue land on each
/// exactly (docs/time-travel.md "Position").
/// </summary>
public class StackedDeliveryTests
{
    private static readonly TimeTravelOptions SmallLadder = new() { SnapshotInterval = 20_000, FinestGap = 256 };

    private sealed record Stacked(byte[] Trace, ExceptionEvent Breakpoint, UpcallEvent Upcall);

    private static Stacked Record(bool pae)
    {
        var rec = Recordings.Record("stacked", pae);
        Assert.Contains("ALL PASS stacked", rec.Console);
        using var reader = TraceReader.Open(new MemoryStream(rec.Trace));
        var events = reader.ReadEvents().ToList();
        var bp = events.OfType<ExceptionEvent>().First(e => e.Vector == 3);
        // The trace holds them in the order they happened: the #BP first, then the upcall over it.
        int at = events.IndexOf(bp);
        var up = Assert.IsType<UpcallEvent>(events[at + 1]);
        Assert.Equal(bp.Icount, up.Icount);
        Assert.Equal(bp.Handler, up.Eip); // the upcall interrupted the #BP handler's first instruction
        return new Stacked(rec.Trace, bp, up);
    }

    private static TimeTravelSession Session(Stacked s) => new(TraceReader.Open(new MemoryStream(s.Trace)), SmallLadder);

    private static string Here(TimeTravelSession s) => $"{s.Icount}+{s.Delivered} {GoldenSessions.Registers(s.Replayer.Machine.Cpu)}";

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AnInstructionsTwoDeliveriesArePartOfItsStepAndReverseStepiUndoesTheWhole(bool pae)
    {
        // The int3 is instruction n; its #BP and the upcall over it are made inside it, so instruction n
        // itself is after both (docs/time-travel.md "Position"): one step from n - 1, at the callback.
        var rec = Record(pae);
        ulong n = rec.Breakpoint.Icount;
        var s = Session(rec);
        Assert.Equal(StopKind.Reached, s.Goto(n - 1).Kind);
        Assert.Equal((n - 1, 0), (s.Icount, s.Delivered));
        var cpu = s.Replayer.Machine.Cpu;
        Assert.Equal(rec.Breakpoint.Eip - 1, cpu.Eip); // at the int3 (one byte; the #BP's EIP is the next instruction)
        string before = Here(s);
        byte[] beforeHash = s.Replayer.Machine.StateHash();

        Assert.Equal(StopKind.Event, s.StepInstruction().Kind);
        Assert.Equal((n, 2), (s.Icount, s.Delivered));
        cpu = s.Replayer.Machine.Cpu;
        Assert.Equal(rec.Upcall.Handler, cpu.Eip);
        // The upcall frame's EIP is the #BP handler's entry; the #BP frame above it holds the int3's next EIP.
        uint sp = cpu.Segs[Seg.SS].Base + cpu.Esp;
        Assert.Equal(rec.Breakpoint.Handler, Read32(cpu, sp));
        Assert.Equal(rec.Breakpoint.Eip, Read32(cpu, sp + 12));
        string after = Here(s);
        byte[] afterHash = s.Replayer.Machine.StateHash();

        Assert.Equal(StopKind.Reached, s.ReverseStepInstruction().Kind);
        Assert.Equal(before, Here(s));
        Assert.Equal(beforeHash, s.Replayer.Machine.StateHash());

        // goto n is the same state as the step's end.
        Assert.Equal(StopKind.Reached, s.Goto(n).Kind);
        Assert.Equal(after, Here(s));
        Assert.Equal(afterHash, s.Replayer.Machine.StateHash());
        Assert.Null(s.Replayer.Verifier.First);
    }

    [Fact]
    public void ReverseContinueToEitherFramesWriteLandsBeforeTheInstructionThatMadeBoth()
    {
        var rec = Record(pae: false);
        ulong n = rec.Breakpoint.Icount;
        var s = Session(rec);
        s.Goto(n - 1);
        byte[] atInt3 = s.Replayer.Machine.StateHash();
        s.StepInstruction();
        var cpu = s.Replayer.Machine.Cpu;
        uint upcallFrame = cpu.Segs[Seg.SS].Base + cpu.Esp, bpFrame = upcallFrame + 12;
        foreach (uint slot in new[] { upcallFrame, bpFrame })
        {
            s.Goto(n + 5);
            var stop = s.ReverseContinue(new StepConstraints { Watchpoints = [new Watchpoint(1, slot, 4, WatchKind.Write)] });
            Assert.Equal(StopKind.Watchpoint, stop.Kind);
            Assert.Equal((n - 1, 0), (s.Icount, s.Delivered));
            Assert.Equal(atInt3, s.Replayer.Machine.StateHash());
        }
    }

    [Fact]
    public void AnUpcallHeldByTheTrapEntrysMaskComesAtTheHandlersIretAtItsOwnCount()
    {
        // The second #BP goes through an event-masking entry: one delivery at its count, the upcall later.
        var rec = Record(pae: false);
        using var reader = TraceReader.Open(new MemoryStream(rec.Trace));
        var events = reader.ReadEvents().ToList();
        var second = events.OfType<ExceptionEvent>().Where(e => e.Vector == 3).ElementAt(1);
        var upcall = events.OfType<UpcallEvent>().First(u => u.Icount > second.Icount);
        Assert.True(upcall.Icount > second.Icount);
        var s = Session(rec);
        s.Goto(second.Icount);
        Assert.Equal(1, s.Delivered);
        Assert.Equal(second.Handler, s.Replayer.Machine.Cpu.Eip);
        s.Goto(upcall.Icount);
        Assert.Equal(1, s.Delivered);
        Assert.Equal(upcall.Handler, s.Replayer.Machine.Cpu.Eip);
    }

    private static uint Read32(X86Cpu cpu, uint linear)
    {
        Assert.True(new GuestView(cpu).TryReadValue(linear, 4, out ulong value));
        return (uint)value;
    }
}
