using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Trace;
using Replayvisor.Replay.Stepping;

namespace Replayvisor.Replay.Tests.TimeTravel;

/// <summary>A replay stepped under constraints stays bit-exact and stops where and why it should.</summary>
public class SteppingTests
{
    [Theory]
    [InlineData("sched-host.rvt")]
    [InlineData("sched-host-chaos.rvt")]
    [InlineData("events.rvt")]
    [InlineData("echo.rvt")]
    public void SteppingInUnevenPiecesReplaysBitExactlyToTheEnd(string name)
    {
        using var reader = GoldenSessions.Open(name);
        var r = new TraceReplayer(reader);
        var sizes = new ulong[] { 1, 7, 1000, 3, 65_537, 12_345, 1, 250_000 };
        StopInfo stop;
        int i = 0;
        do stop = r.Step(new StepConstraints { ToIcount = r.Icount + sizes[i++ % sizes.Length] });
        while (stop.Kind == StopKind.Reached);
        Assert.Equal(StopKind.EndOfTrace, stop.Kind);
        Assert.Null(r.Verifier.First);
        Assert.Equal(reader.Summary!.FinalIcount, r.Icount);
        Assert.Equal(MachineExitKind.PoweredOff, stop.Exit!.Kind);
    }

    [Theory]
    [InlineData("sched-host.rvt")]
    [InlineData("events.rvt")]
    [InlineData("traps-pae.rvt")]
    public void StoppingAtEveryEventSeesEachRecordedOneOnce(string name)
    {
        using var reader = GoldenSessions.Open(name);
        var expected = reader.ReadEvents().Where(e => e is HypercallEvent or UpcallEvent or ExceptionEvent or ConsoleOutputEvent).ToList();
        var r = new TraceReplayer(reader);
        var any = new EventStop { AnyHypercall = true, Upcall = true, AnyException = true, ConsoleOutput = true };
        var seen = new List<TraceEvent>();
        StopInfo stop;
        while ((stop = r.Step(new StepConstraints { Events = any })).Kind == StopKind.Event)
        {
            Assert.Equal(stop.Event!.Icount, stop.Icount);
            seen.Add(stop.Event);
        }
        Assert.Equal(StopKind.EndOfTrace, stop.Kind);
        Assert.Null(r.Verifier.First);
        Assert.Equal(expected, seen);
    }

    [Fact]
    public void ANamedHypercallStopsOnlyAtThatHypercall()
    {
        using var reader = GoldenSessions.Open("events.rvt");
        int consoleIo = reader.ReadEvents().OfType<HypercallEvent>().Count(h => h.Number == 18);
        var r = new TraceReplayer(reader);
        var only = new EventStop { Hypercalls = new HashSet<int> { 18 } };
        int stops = 0;
        while (r.Step(new StepConstraints { Events = only }) is { Kind: StopKind.Event } s)
        {
            Assert.Equal(18, Assert.IsType<HypercallEvent>(s.Event).Number);
            stops++;
        }
        Assert.True(consoleIo > 0);
        Assert.Equal(consoleIo, stops);
    }

    [Fact]
    public void ABreakpointOnAGuestFunctionStopsBeforeItsFirstInstructionEachTimeItRuns()
    {
        using var reader = GoldenSessions.Open("events.rvt");
        var symbols = Engine.Boot.GuestSymbols.FromImage(reader.GuestImage.Span);
        uint upcall = symbols.AddressOf("upcall")!.Value;
        int upcalls = reader.ReadEvents().Count(e => e is UpcallEvent);
        var r = new TraceReplayer(reader);
        var c = new StepConstraints { Breakpoints = [new Breakpoint(1, upcall)] };
        int hits = 0;
        while (r.Step(c) is { Kind: StopKind.Breakpoint } s)
        {
            Assert.Equal(upcall, r.Machine.Cpu.Eip);
            Assert.Equal(1, s.Breakpoint!.Id);
            hits++;
        }
        Assert.Null(r.Verifier.First);
        Assert.Equal(upcalls, hits);
    }

    [Fact]
    public void APhysicalBreakpointStopsWhereTheLinearOneDoes()
    {
        using var reader = GoldenSessions.Open("events.rvt");
        var symbols = Engine.Boot.GuestSymbols.FromImage(reader.GuestImage.Span);
        uint count = symbols.AddressOf("count")!.Value;
        var r = new TraceReplayer(reader);
        var linear = r.Step(new StepConstraints { Breakpoints = [new Breakpoint(1, count)] });
        Assert.Equal(StopKind.Breakpoint, linear.Kind);
        Assert.True(r.View.TryTranslate(count, out ulong pa));
        using var again = GoldenSessions.Open("events.rvt");
        var r2 = new TraceReplayer(again);
        var physical = r2.Step(new StepConstraints { Breakpoints = [new Breakpoint(2, pa, AddressKind.Physical)] });
        Assert.Equal(StopKind.Breakpoint, physical.Kind);
        Assert.Equal(linear.Icount, physical.Icount);
    }

    [Fact]
    public void AWriteWatchpointReportsEveryChangeWithOldAndNewValues()
    {
        using var reader = GoldenSessions.Open("events.rvt");
        var symbols = Engine.Boot.GuestSymbols.FromImage(reader.GuestImage.Span);
        uint counter = symbols.AddressOf("upcalls")!.Value;
        int upcalls = reader.ReadEvents().Count(e => e is UpcallEvent);
        var r = new TraceReplayer(reader);
        var c = new StepConstraints { Watchpoints = [new Watchpoint(1, counter, 4, WatchKind.Write)] };
        var values = new List<(ulong Old, ulong New)>();
        while (r.Step(c) is { Kind: StopKind.Watchpoint } s) values.Add((s.Watch!.OldValue, s.Watch.NewValue));
        Assert.Equal(Enumerable.Range(0, upcalls).Select(i => ((ulong)i, (ulong)i + 1)), values);
    }

    [Fact]
    public void AReadWatchpointSeesTheGuestReadingItsCounter()
    {
        using var reader = GoldenSessions.Open("events.rvt");
        var symbols = Engine.Boot.GuestSymbols.FromImage(reader.GuestImage.Span);
        uint counter = symbols.AddressOf("upcalls")!.Value;
        var r = new TraceReplayer(reader);
        var stop = r.Step(new StepConstraints { Watchpoints = [new Watchpoint(1, counter, 4, WatchKind.Read)] });
        Assert.Equal(StopKind.Watchpoint, stop.Kind);
        Assert.Equal(WatchKind.Read, stop.Watch!.Access);
        Assert.Equal(stop.Watch.OldValue, stop.Watch.NewValue);
    }
    /// <summary>The first hypercall numbered <paramref name="number"/> in a golden trace and the guest buffer it reads (console_io's string, multicall's list).</summary>
    internal static (HypercallEvent Call, uint Buffer, int Length) HypercallBuffer(TraceReader reader, int number)
    {
        var call = reader.ReadEvents().OfType<HypercallEvent>().First(h => h.Number == number);
        return number == 13 ? (call, call.Args[0], (int)call.Args[1] * 32) : (call, call.Args[2], (int)call.Args[1]);
    }

    [Theory]
    [InlineData("hello.rvt", 18)] // console_io(write, count, string)
    [InlineData("multicall.rvt", 13)] // multicall(list of 32-byte entries, count)
    public void AReadWatchpointSeesXenReadAHypercallsBufferAfterTheHypercallInstruction(string name, int number)
    {
        using var reader = GoldenSessions.Open(name);
        var (call, buffer, length) = HypercallBuffer(reader, number);
        var r = new TraceReplayer(reader);
        // From the int $0x82 (the hypercall event's count is the one after it): nothing but Xen reads the buffer in that step.
        Assert.Equal(StopKind.Reached, r.Step(new StepConstraints { ToIcount = call.Icount - 1 }).Kind);
        foreach (var kind in new[] { WatchKind.Read, WatchKind.Access })
        {
            var from = r.Capture();
            var stop = r.Step(new StepConstraints { Watchpoints = [new Watchpoint(1, buffer, length, kind)] });
            Assert.Equal(StopKind.Watchpoint, stop.Kind);
            Assert.Equal(call.Icount, stop.Icount);
            // multicall also writes each entry's result back: an access watchpoint reports that change as a write.
            Assert.Equal(kind == WatchKind.Access && number == 13 ? WatchKind.Write : WatchKind.Read, stop.Watch!.Access);
            Assert.Equal(call.Icount - 1, stop.StepStartIcount);
            r.Restore(from);
        }
    }

    [Fact]
    public void TheReplaysOwnPeeksAtTheStackAreNotGuestReads()
    {
        // At a hypercall through a stub the model peeks at the caller's return address ([esp], the call site the
        // trace records) without side effects: not a read by the guest. The stub's ret reads it, one step later.
        using var reader = GoldenSessions.Open("hello.rvt");
        var (call, _, _) = HypercallBuffer(reader, 18);
        var r = new TraceReplayer(reader);
        r.Step(new StepConstraints { ToIcount = call.Icount - 1 });
        uint esp = r.Machine.Cpu.Segs[Engine.Cpu.Seg.SS].Base + r.Machine.Cpu.Esp;
        var stop = r.Step(new StepConstraints { Watchpoints = [new Watchpoint(1, esp, 4, WatchKind.Read)] });
        Assert.Equal(StopKind.Watchpoint, stop.Kind);
        Assert.Equal(call.Icount + 1, stop.Icount);
        Assert.Null(r.Machine.Guest.ReadWatch); // and the step leaves no hook behind
    }

    [Theory]
    [InlineData("sched-host-chaos.rvt")]
    [InlineData("events.rvt")]
    public void AnEventIndexStopsWhereThatEventHappensInputsIncluded(string name)
    {
        // `catch event INDEX` (docs/time-travel.md): time values and chaos delays are events too; a
        // stop at one of them is where it was taken, not at the end of the machine run that took it.
        using var reader = GoldenSessions.Open(name);
        var events = reader.ReadEvents().ToList();
        var r = new TraceReplayer(reader);
        int inputs = 0;
        var wrong = new List<string>();
        for (long k = r.EventIndex; k < events.Count; k = Math.Max(k + 1, r.EventIndex))
        {
            var stop = r.Step(new StepConstraints { Events = new EventStop { EventIndex = k } });
            if (stop.Kind == StopKind.EndOfTrace) break; // the closing events come with the end
            Assert.True(stop.Kind == StopKind.Event, $"event #{k} {events[(int)k]}: {stop}");
            Assert.Equal(events[(int)k], stop.Event);
            // A TSC value is recorded at the count of the rdtsc that reads it: the stop is after that instruction.
            ulong at = events[(int)k] is TimeEvent { Kind: TimeKind.Tsc } ? events[(int)k].Icount + 1 : events[(int)k].Icount;
            if (at != stop.Icount) wrong.Add($"#{k} {events[(int)k]} at {stop.Icount}");
            if (events[(int)k] is InputEvent) inputs++;
        }
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
        Assert.Null(r.Verifier.First);
        Assert.Equal(MachineExitKind.PoweredOff, r.Step(new StepConstraints()).Exit!.Kind);
        Assert.True(name == "events.rvt" || inputs >= 20, $"{inputs} inputs");
    }
    [Fact]
    public void AnEventLeftFromAnEarlierStepStopsOnlyAStepThatAsksForIt()
    {
        // console_io's output and its hypercall come at one count: a step stops at the first, the next
        // step with the same filter at the second; a plain step (stepi, goto after `catch clear`) moves on.
        using var reader = GoldenSessions.Open("events.rvt");
        var r = new TraceReplayer(reader);
        var both = new StepConstraints { Events = new EventStop { ConsoleOutput = true, Hypercalls = new HashSet<int> { 18 } } };
        Assert.IsType<ConsoleOutputEvent>(r.Step(both).Event);
        ulong at = r.Icount;
        var second = r.Step(both);
        Assert.Equal(18, Assert.IsType<HypercallEvent>(second.Event).Number);
        Assert.Equal(at, second.Icount);
        Assert.IsType<ConsoleOutputEvent>(r.Step(both).Event);
        at = r.Icount;
        var plain = r.Step(new StepConstraints { ToIcount = at + 1000 });
        Assert.Equal(StopKind.Reached, plain.Kind);
        Assert.Equal(at + 1000, r.Icount);
    }
}
