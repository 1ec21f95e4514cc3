using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Trace;
using Replayvisor.Replay.Stepping;

namespace Replayvisor.Replay.Tests.TimeTravel;

/// <summary>
/// Breakpoints alone (linear or physical) run the replay at full speed (X86Cpu.SetHostBreakpoints):
/// blocks run whole until one holds a breakpoint. The stops must be exactly those of a run that checks after
/// every instruction, on every CPU tier.
/// </summary>
public class FullSpeedBreakpointTests
{
    private static (List<ulong> Stops, byte[] Hash, long Runs, ulong End) Continue(StepConstraints c, CpuTier tier)
    {
        using var reader = GoldenSessions.Open("events.rvt");
        var r = new TraceReplayer(reader, tier: tier, compileThreshold: 0);
        var stops = new List<ulong>();
        StopInfo stop;
        while ((stop = r.Step(c)).Kind == StopKind.Breakpoint) stops.Add(stop.Icount);
        Assert.Equal(StopKind.EndOfTrace, stop.Kind);
        Assert.Null(r.Verifier.First);
        return (stops, r.Machine.StateHash(), r.MachineRuns, r.Icount);
    }

    private static uint Symbol(string name)
    {
        using var reader = GoldenSessions.Open("events.rvt");
        return GuestSymbols.FromImage(reader.GuestImage.Span).AddressOf(name)!.Value;
    }

    /// <summary>The address of the instruction after the one at <paramref name="address"/> (the guest's code as loaded).</summary>
    private static uint NextInstruction(uint address)
    {
        using var reader = GoldenSessions.Open("events.rvt");
        var r = new TraceReplayer(reader);
        Assert.Equal(StopKind.Breakpoint, r.Step(new StepConstraints { Breakpoints = [new Breakpoint(1, address)] }).Kind);
        Assert.True(new InstructionAccesses(r.Machine.Cpu, r.View).TryDecode(address, code32: true, out var insn));
        return (uint)insn.NextIP;
    }

    /// <summary>The machine-physical address the guest's code at <paramref name="linear"/> runs from.</summary>
    private static ulong PhysicalOf(uint linear)
    {
        using var reader = GoldenSessions.Open("events.rvt");
        var r = new TraceReplayer(reader);
        Assert.Equal(StopKind.Breakpoint, r.Step(new StepConstraints { Breakpoints = [new Breakpoint(1, linear)] }).Kind);
        Assert.True(r.View.TryTranslate(linear, out ulong pa));
        return pa;
    }

    [Theory]
    [InlineData(CpuTier.Interpreter)]
    [InlineData(CpuTier.BlockCache)]
    [InlineData(CpuTier.Compiled)]
    public void ContinuingStopsWhereCheckingEveryInstructionDoesWithoutSingleStepping(CpuTier tier)
    {
        // The per-port handler's entry (a block start) by its machine-physical address, and the
        // upcall handler's second and third instructions (inside the block that starts at its
        // entry), by linear and by physical address.
        ulong count = PhysicalOf(Symbol("count"));
        uint second = NextInstruction(Symbol("upcall")), third = NextInstruction(second);
        var breakpoints = new[] { new Breakpoint(1, second), new Breakpoint(2, count, AddressKind.Physical), new Breakpoint(3, PhysicalOf(third), AddressKind.Physical) };
        // The reference: a watchpoint on a byte nobody writes forces the check after every instruction.
        var never = new Watchpoint(9, Symbol("guest_name"), 1, WatchKind.Write);
        var reference = Continue(new StepConstraints { Breakpoints = breakpoints, Watchpoints = [never] }, CpuTier.BlockCache);
        var fast = Continue(new StepConstraints { Breakpoints = breakpoints }, tier);
        Assert.NotEmpty(reference.Stops);
        Assert.Equal(reference.Stops, fast.Stops);
        Assert.Equal(reference.Hash, fast.Hash);
        Assert.True(reference.Runs >= (long)reference.End, "the reference checks every instruction");
        Assert.True(fast.Runs < (long)fast.End / 100, $"continue made {fast.Runs} machine runs for {fast.End} instructions");
    }

    [Fact]
    public void AConditionThatDoesNotHoldLetsTheRunGoOn()
    {
        uint count = Symbol("count");
        var all = Continue(new StepConstraints { Breakpoints = [new Breakpoint(1, count)] }, CpuTier.Compiled);
        Assert.True(all.Stops.Count >= 2);
        ulong second = all.Stops[1];
        var bp = new Breakpoint(1, count) { Condition = cpu => cpu.Icount >= second };
        var conditional = Continue(new StepConstraints { Breakpoints = [bp] }, CpuTier.Compiled);
        Assert.Equal(all.Stops.Skip(1), conditional.Stops);
    }

    [Fact]
    public void AWatchpointOverAWholeArraySeesEveryWriteToAnyElement()
    {
        using var reader = GoldenSessions.Open("events.rvt");
        var symbols = GuestSymbols.FromImage(reader.GuestImage.Span);
        uint hits = symbols.AddressOf("hits")!.Value;
        const int length = 1024 * 4; // NR_EVENT_CHANNELS ints (guests/lib/xen.h)
        // Every call of count() increments one element of hits[].
        int calls = Continue(new StepConstraints { Breakpoints = [new Breakpoint(1, symbols.AddressOf("count")!.Value)] }, CpuTier.Compiled).Stops.Count;
        var r = new TraceReplayer(reader);
        var c = new StepConstraints { Watchpoints = [new Watchpoint(1, hits, length, WatchKind.Write)] };
        int writes = 0;
        while (r.Step(c) is { Kind: StopKind.Watchpoint } s)
        {
            Assert.Equal(length, s.Watch!.Old.Length);
            var changed = Enumerable.Range(0, length / 4).Where(i => BitConverter.ToInt32(s.Watch.Old, i * 4) != BitConverter.ToInt32(s.Watch.New, i * 4)).ToList();
            int element = Assert.Single(changed);
            Assert.Equal(BitConverter.ToInt32(s.Watch.Old, element * 4) + 1, BitConverter.ToInt32(s.Watch.New, element * 4));
            writes++;
        }
        Assert.Null(r.Verifier.First);
        Assert.True(calls > 0);
        Assert.Equal(calls, writes);
    }
}
