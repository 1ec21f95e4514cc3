using Replayvisor.Engine.Trace;
using Replayvisor.Replay.Stepping;
using Replayvisor.Replay.TimeTravel;

namespace Replayvisor.Replay.Tests.TimeTravel;

/// <summary>Seeking and reverse execution land on exactly the states a straight replay passes through.</summary>
public class ReverseTests
{
    private static readonly TimeTravelOptions SmallLadder = new() { SnapshotInterval = 20_000, FinestGap = 256 };

    [Theory]
    [InlineData("sched-host.rvt")]
    [InlineData("events.rvt")]
    public void GotoAnywhereGivesTheStateAStraightReplayHasThere(string name)
    {
        var targets = new ulong[] { 5_000, 60_000, 41_000, 90_000, 1, 60_001, 0, 77_777 };
        var straight = new Dictionary<ulong, byte[]>();
        using (var reader = GoldenSessions.Open(name))
        {
            var r = new TraceReplayer(reader);
            foreach (ulong t in targets.Order())
            {
                r.Step(new StepConstraints { ToIcount = t });
                straight[t] = r.Machine.StateHash();
            }
        }
        var s = GoldenSessions.TimeTravel(name, SmallLadder);
        s.Step(new StepConstraints { ToIcount = 95_000 });
        foreach (ulong t in targets)
        {
            Assert.Equal(StopKind.Reached, s.Goto(t).Kind);
            Assert.Equal(t, s.Icount);
            Assert.Equal(straight[t], s.Replayer.Machine.StateHash());
        }
        Assert.Equal(StopKind.EndOfTrace, s.Step(new StepConstraints()).Kind);
        Assert.Null(s.Replayer.Verifier.First);
    }

    [Theory]
    [InlineData("hello.rvt", 18)]
    [InlineData("multicall.rvt", 13)]
    public void ReverseContinueFindsXenReadingAHypercallsBuffer(string name, int number)
    {
        var s = GoldenSessions.TimeTravel(name, SmallLadder);
        var (call, buffer, length) = SteppingTests.HypercallBuffer(s.Reader, number);
        s.Goto(call.Icount + 1);
        var stop = s.ReverseContinue(new StepConstraints { Watchpoints = [new Watchpoint(1, buffer, length, WatchKind.Read)] });
        // Going back, a watchpoint hit lands before the step that made it: the hypercall instruction itself.
        Assert.Equal(StopKind.Watchpoint, stop.Kind);
        Assert.Equal(WatchKind.Read, stop.Watch!.Access);
        Assert.Equal(call.Icount - 1, s.Icount);
        Assert.Null(s.Replayer.Machine.Guest.ReadWatch);
    }

    [Fact]
    public void StepiThenReverseStepiRetracesEveryRegisterSet()
    {
        var s = GoldenSessions.TimeTravel("events.rvt", SmallLadder);
        // Start a little before the first upcall so the walk crosses a delivery.
        ulong firstUpcall = s.Reader.ReadEvents().OfType<UpcallEvent>().First().Icount;
        s.Goto(firstUpcall - 150);
        string Here() => $"{s.Icount}+{s.Delivered} {GoldenSessions.Registers(s.Replayer.Machine.Cpu)}";
        var forward = new List<string> { Here() };
        int deliveries = 0;
        for (int i = 0; i < 300; i++)
        {
            // A delivery is a step of its own (an event stop at the handler's first instruction).
            var kind = s.StepInstruction().Kind;
            Assert.True(kind is StopKind.Reached or StopKind.Event, kind.ToString());
            if (kind == StopKind.Event) deliveries++;
            forward.Add(Here());
        }
        Assert.True(deliveries > 0);
        for (int i = 299; i >= 0; i--)
        {
            var kind = s.ReverseStepInstruction().Kind;
            Assert.True(kind is StopKind.Reached or StopKind.Event, kind.ToString());
            Assert.Equal(forward[i], Here());
        }
    }

    [Fact]
    public void ReverseContinueStopsAtTheLastBreakpointHitBeforeHere()
    {
        var s = GoldenSessions.TimeTravel("events.rvt", SmallLadder);
        uint upcall = s.Symbols.AddressOf("upcall")!.Value;
        var bp = new StepConstraints { Breakpoints = [new Breakpoint(1, upcall)] };
        var hits = new List<ulong>();
        while (s.Step(bp) is { Kind: StopKind.Breakpoint } h) hits.Add(h.Icount);
        Assert.True(hits.Count >= 2);
        // From the end, back through every hit in turn, then to the beginning.
        for (int i = hits.Count - 1; i >= 0; i--)
        {
            var back = s.ReverseContinue(bp);
            Assert.Equal(StopKind.Breakpoint, back.Kind);
            Assert.Equal(hits[i], s.Icount);
            Assert.Equal(upcall, s.Replayer.Machine.Cpu.Eip);
        }
        Assert.Equal(StopKind.BeginningOfTrace, s.ReverseContinue(bp).Kind);
        Assert.Equal(0ul, s.Icount);
        Assert.Equal(StopKind.BeginningOfTrace, s.ReverseStepInstruction().Kind);
    }

    [Fact]
    public void ReverseContinueToAWatchpointStopsBeforeTheLastWrite()
    {
        var s = GoldenSessions.TimeTravel("events.rvt", SmallLadder);
        uint counter = s.Symbols.AddressOf("upcalls")!.Value;
        var watch = new StepConstraints { Watchpoints = [new Watchpoint(1, counter, 4, WatchKind.Write)] };
        Assert.Equal(StopKind.EndOfTrace, s.Step(new StepConstraints()).Kind);
        s.Replayer.View.TryReadValue(counter, 4, out ulong final);
        var back = s.ReverseContinue(watch);
        Assert.Equal(StopKind.Watchpoint, back.Kind);
        s.Replayer.View.TryReadValue(counter, 4, out ulong before);
        Assert.Equal(final - 1, before);
        s.StepInstruction();
        s.Replayer.View.TryReadValue(counter, 4, out ulong after);
        Assert.Equal(final, after);
    }

    [Fact]
    public void ReverseFinishReturnsToTheCallThatEnteredTheFunction()
    {
        var s = GoldenSessions.TimeTravel("events.rvt", SmallLadder);
        uint count = s.Symbols.AddressOf("count")!.Value;
        s.Step(new StepConstraints { Breakpoints = [new Breakpoint(1, count)] });
        uint ret = Read32(s, s.Replayer.Machine.Cpu.Esp);
        ulong entry = s.Icount;
        s.StepInstruction();
        s.StepInstruction();
        var stop = s.ReverseFinish();
        Assert.Equal(StopKind.Reached, stop.Kind);
        Assert.Equal(entry - 1, s.Icount);
        s.Replayer.View.TryRead(s.Replayer.View.Pc, new byte[1]);
        // The instruction here is the call: executing it lands on count's entry with the same return address.
        s.StepInstruction();
        Assert.Equal(count, s.Replayer.Machine.Cpu.Eip);
        Assert.Equal(ret, Read32(s, s.Replayer.Machine.Cpu.Esp));
    }

    [Fact]
    public void ReverseFinishFromAHypercallStubReturnsToTheCallOfThatStub()
    {
        // A stop at a hypercall (catch hypercall) is on its stub's ret; the page's first stub is another hypercall's.
        var s = GoldenSessions.TimeTravel("events.rvt", SmallLadder);
        uint page = s.Symbols.AddressOf("hypercall_page")!.Value;
        var consoleIo = new StepConstraints { Events = new EventStop { Hypercalls = new HashSet<int> { 18 } } };
        s.Step(consoleIo);
        var stop = s.Step(consoleIo);
        var call = Assert.IsType<HypercallEvent>(stop.Event);
        uint ret = Read32(s, s.Replayer.Machine.Cpu.Esp);
        Assert.Equal(ret, call.Site); // console_io's stub returns to the site the trace recorded
        ulong at = s.Icount;
        Assert.Equal(StopKind.Reached, s.ReverseFinish().Kind);
        Assert.InRange(s.Icount, at - 10, at - 1);
        s.StepInstruction(); // the call: into console_io's stub, with the same return address
        Assert.Equal(page + 18 * 32, s.Replayer.Machine.Cpu.Eip);
        Assert.Equal(ret, Read32(s, s.Replayer.Machine.Cpu.Esp));
    }

    [Fact]
    public void GotoTheCountOfAStopAfterADeliveryIsThatCountItself()
    {
        // sched-chaos: a timer upcall at 10,002,214 interrupts task_main. A stop there for the upcall is
        // after the delivery (EIP at the handler); goto 10,002,214 is the instruction count, as from afar.
        const ulong at = 10_002_214;
        var fresh = GoldenSessions.TimeTravel("sched-chaos.rvt", SmallLadder);
        fresh.Goto(at);
        string expected = GoldenSessions.Registers(fresh.Replayer.Machine.Cpu);
        var s = GoldenSessions.TimeTravel("sched-chaos.rvt", SmallLadder);
        s.Goto(at - 100);
        var stop = s.Step(new StepConstraints { Events = new EventStop { Upcall = true } });
        Assert.Equal(at, stop.Icount);
        Assert.NotEqual(expected, GoldenSessions.Registers(s.Replayer.Machine.Cpu)); // at the handler
        Assert.Equal(StopKind.Reached, s.Goto(at).Kind);
        Assert.Equal(expected, GoldenSessions.Registers(s.Replayer.Machine.Cpu));
    }

    [Fact]
    public void StepiAndReverseStepiAroundADeliveryAreExactInverses()
    {
        // sched-chaos: a timer upcall at 10,002,214 interrupts task_main (docs/time-travel.md "Position").
        const ulong at = 10_002_214;
        var s = GoldenSessions.TimeTravel("sched-chaos.rvt", SmallLadder);
        s.Goto(at);
        string interrupted = GoldenSessions.Registers(s.Replayer.Machine.Cpu);
        byte[] before = s.Replayer.Machine.StateHash();
        s.Goto(at - 100);
        Assert.Equal(StopKind.Event, s.Step(new StepConstraints { Events = new EventStop { Upcall = true } }).Kind);
        string handler = GoldenSessions.Registers(s.Replayer.Machine.Cpu);
        byte[] entry = s.Replayer.Machine.StateHash();
        Assert.Equal((at, 1), (s.Icount, s.Delivered));
        Assert.NotEqual(interrupted, handler);

        s.StepInstruction(); // the handler's first instruction
        Assert.Equal((at + 1, 0), (s.Icount, s.Delivered));
        s.ReverseStepInstruction(); // back to the handler's entry, not to before the delivery
        Assert.Equal((at, 1), (s.Icount, s.Delivered));
        Assert.Equal(handler, GoldenSessions.Registers(s.Replayer.Machine.Cpu));
        Assert.Equal(entry, s.Replayer.Machine.StateHash());
        s.ReverseStepInstruction(); // back over the delivery: instruction 10,002,214 itself
        Assert.Equal((at, 0), (s.Icount, s.Delivered));
        Assert.Equal(interrupted, GoldenSessions.Registers(s.Replayer.Machine.Cpu));
        Assert.Equal(before, s.Replayer.Machine.StateHash());
        Assert.Equal(StopKind.Event, s.StepInstruction().Kind); // and forward again: the delivery alone
        Assert.Equal((at, 1), (s.Icount, s.Delivered));
        Assert.Equal(entry, s.Replayer.Machine.StateHash());
    }

    [Fact]
    public void ReverseContinueToAWriteByAHandlersFirstInstructionLandsAtTheHandlersEntry()
    {
        // The handler's first instruction (push 0) writes below the frame the delivery built: going back to
        // that write lands before it, which is after the delivery, at the same count.
        const ulong at = 10_002_214;
        var s = GoldenSessions.TimeTravel("sched-chaos.rvt", SmallLadder);
        s.Goto(at - 100);
        s.Step(new StepConstraints { Events = new EventStop { Upcall = true } });
        byte[] entry = s.Replayer.Machine.StateHash();
        uint slot = s.Replayer.Machine.Cpu.Segs[Engine.Cpu.Seg.SS].Base + s.Replayer.Machine.Cpu.Esp - 4;
        s.Goto(at + 5);
        var stop = s.ReverseContinue(new StepConstraints { Watchpoints = [new Watchpoint(1, slot, 4, WatchKind.Access)] });
        Assert.Equal(StopKind.Watchpoint, stop.Kind);
        Assert.Equal((at, 1), (s.Icount, s.Delivered));
        Assert.Equal(entry, s.Replayer.Machine.StateHash());
    }

    [Fact]
    public void FromAHandlersEntryReverseContinueFindsTheDeliveryAtThatCount()
    {
        // At the handler's entry ESP points at the frame the delivery just wrote: going back to that write
        // lands before the delivery, at the same count (a stop earlier at the origin's count is before it).
        const ulong at = 10_002_214;
        var s = GoldenSessions.TimeTravel("sched-chaos.rvt", SmallLadder);
        s.Goto(at);
        byte[] before = s.Replayer.Machine.StateHash();
        Assert.Equal(StopKind.Event, s.StepInstruction().Kind); // the delivery alone
        Assert.Equal((at, 1), (s.Icount, s.Delivered));
        uint frame = s.Replayer.Machine.Cpu.Segs[Engine.Cpu.Seg.SS].Base + s.Replayer.Machine.Cpu.Esp;
        var stop = s.ReverseContinue(new StepConstraints { Watchpoints = [new Watchpoint(1, frame, 12, WatchKind.Write)] });
        Assert.Equal(StopKind.Watchpoint, stop.Kind);
        Assert.Equal((at, 0), (s.Icount, s.Delivered));
        Assert.Equal(before, s.Replayer.Machine.StateHash());
    }

    [Fact]
    public void TheLadderStaysWithinItsBudgetAndKeepsTheStart()
    {
        var s = GoldenSessions.TimeTravel("sched-host.rvt", new TimeTravelOptions { SnapshotInterval = 50_000, SnapshotMemoryBytes = 6L << 20 });
        s.Step(new StepConstraints { ToIcount = 5_000_000 });
        Assert.True(s.Ladder.BytesUsed <= 6L << 20 || s.Ladder.Count <= 2, $"{s.Ladder.BytesUsed} bytes in {s.Ladder.Count} snapshots");
        Assert.Contains(0ul, s.Ladder.Positions);
        Assert.True(s.Ladder.Count > 3);
        // Denser near the current position than far from it.
        var p = s.Ladder.Positions.ToArray();
        Assert.True(p[^1] - p[^2] < p[2] - p[1], string.Join(",", p));
    }

    private static uint Read32(TimeTravelSession s, uint va)
    {
        s.Replayer.View.TryReadValue(va, 4, out ulong v);
        return (uint)v;
    }
}
