using System.Diagnostics;
using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Trace;
using Replayvisor.Engine.Xen.Hypercalls;
using Replayvisor.Replay.Stepping;
using Replayvisor.Replay.TimeTravel;
using Xunit.Abstractions;

namespace Replayvisor.Replay.Tests.TimeTravel;

/// <summary>
/// Steps of one vCPU (docs/gdbserver.md "Stepping a thread"), checked against each vCPU's own steps
/// as a plain machine-wide stepping of the smp guest (three vCPUs) shows them: a vCPU made a step in
/// a machine step when its registers (running or parked) changed in it.
/// </summary>
public class VcpuStepTests(ITestOutputHelper output)
{
    private static readonly Lazy<byte[]> Smp = new(() =>
    {
        var r = Recordings.Record("smp", pae: true, vcpus: 3);
        Assert.Contains("ALL PASS", r.Console);
        return r.Trace;
    });

    /// <summary>
    /// Counts found from the recording's events (guests/smp/smp.c): the range stepped machine-wide, from just
    /// before vCPU 1's VCPUOP_initialise to just after vCPU 2's VCPUOP_down (vCPUs 1 and 2 come up, wait for
    /// the CPU, run in turns, block and go down), and a point 1,000 instructions after vCPU 1 was brought up,
    /// where it waits while vCPU 0 keeps the CPU until it blocks.
    /// </summary>
    private static readonly Lazy<(ulong From, ulong To, ulong Waiting)> Points = new(() =>
    {
        using var reader = TraceReader.Open(new MemoryStream(Smp.Value));
        ulong? init = null, up = null, down = null;
        foreach (var h in reader.ReadEvents().OfType<HypercallEvent>())
        {
            if (HypercallTable.NameOf(h.Number) != "vcpu_op" || h.Result != 0 || h.Args.Count < 2) continue;
            if (h.Args[0] == 0 && h.Args[1] == 1) init ??= h.Icount; // VCPUOP_initialise of vCPU 1
            if (h.Args[0] == 1 && h.Args[1] == 1) up ??= h.Icount;   // VCPUOP_up
            if (h.Args[0] == 2 && h.Args[1] == 2) down ??= h.Icount; // VCPUOP_down of vCPU 2
        }
        Assert.True(init != null && up != null && down != null, "the smp recording lacks vCPU 1's initialise or up, or vCPU 2's down");
        return (init.Value - 500, down.Value + 2000, up.Value + 1000);
    });

    private static ulong From => Points.Value.From;
    private static ulong To => Points.Value.To;

    private sealed record State(ulong Icount, long EventIndex, string[] Registers);

    /// <summary>Every machine step's state in [From, To) and, per vCPU, the indices of the states right after its steps.</summary>
    private static readonly Lazy<(List<State> States, List<int>[] StepsOf)> Reference = new(() =>
    {
        var s = Session();
        s.Goto(From);
        var states = new List<State> { Capture(s) };
        var steps = new List<int>[3] { [], [], [] };
        while (s.Icount < To)
        {
            var stop = s.StepInstruction();
            Assert.True(stop.Kind is StopKind.Reached or StopKind.Event, stop.ToString());
            var now = Capture(s);
            for (int v = 0; v < 3; v++)
                if (states[^1].Registers[v] != "-" && now.Registers[v] != states[^1].Registers[v]) steps[v].Add(states.Count); // not its VCPUOP_initialise
            states.Add(now);
        }
        return (states, steps);
    });

    private static TimeTravelSession Session() => new(TraceReader.Open(new MemoryStream(Smp.Value)));

    private static string Regs(CpuSnapshot? c) => c == null ? "-" : $"{string.Join(',', c.Gpr)} {c.Eip:x} {c.Eflags:x}";

    private static State Capture(TimeTravelSession s) =>
        new(s.Icount, s.EventIndex, [.. Enumerable.Range(0, 3).Select(v => Regs(VcpuContexts.Registers(s.Replayer.Machine, v)))]);

    /// <summary>Moves to a state of the reference: its count, then on through the deliveries made there.</summary>
    private static void GoTo(TimeTravelSession s, State st)
    {
        s.Goto(st.Icount);
        while (s.EventIndex < st.EventIndex) s.StepInstruction();
        Assert.Equal((st.Icount, st.EventIndex), (s.Icount, s.EventIndex));
    }

    [Fact]
    public void AStepOfAWaitingVcpuRunsTheOthersUntilItExecutedOneInstructionAndBackReturnsToItsState()
    {
        var (states, stepsOf) = Reference.Value;
        // vCPU 1 is up and runnable but vCPU 0 keeps the CPU until it blocks.
        int p = states.FindIndex(x => x.Icount == Points.Value.Waiting);
        int next = stepsOf[1].First(i => i > p);
        Assert.True(states[next].Icount > states[p].Icount + 10_000, $"vCPU 1 steps first at {states[next].Icount}");

        var s = Session();
        GoTo(s, states[p]);
        Assert.Equal(0, s.Replayer.Machine.Hypervisor.CurrentVcpu);
        var clock = Stopwatch.StartNew();
        var stop = s.StepInstruction(1);
        var forward = clock.Elapsed;
        Assert.Equal(StopKind.Reached, stop.Kind);
        Assert.Equal(states[next], Capture(s) with { Registers = states[next].Registers });
        Assert.Equal(states[next].Registers, Capture(s).Registers);
        // Its eip moved by one instruction of its own: the cld at secondary_start.
        Assert.Equal(states[p].Registers[1].Split(' ')[1], (Convert.ToUInt32(states[next].Registers[1].Split(' ')[1], 16) - 1).ToString("x"));

        clock.Restart();
        stop = s.ReverseStepInstruction(1);
        var back = clock.Elapsed;
        Assert.Equal(StopKind.Reached, stop.Kind);
        Assert.Equal(states[next - 1], Capture(s) with { Registers = states[next - 1].Registers });
        Assert.Equal(states[p].Registers[1], Capture(s).Registers[1]);

        // The same wait stepped machine-wide, one instruction at a time, as a step would without the fast path.
        GoTo(s, states[p]);
        clock.Restart();
        while (Regs(VcpuContexts.Registers(s.Replayer.Machine, 1)) == states[p].Registers[1]) s.StepInstruction();
        var slow = clock.Elapsed;
        Assert.Equal(states[next].Icount, s.Icount);
        output.WriteLine($"vCPU 1 waited {states[next].Icount - states[p].Icount} instructions: step {forward.TotalMilliseconds:F1} ms, " +
            $"reverse step {back.TotalMilliseconds:F1} ms, machine-wide stepping {slow.TotalMilliseconds:F1} ms");
    }

    [Fact]
    public void StepsOfEachVcpuForwardAndBackMatchItsOwnStepsInAPlainStepping()
    {
        var (states, stepsOf) = Reference.Value;
        var s = Session();
        int checkedSteps = 0;
        for (int p = 0; p < states.Count; p += 997)
        {
            for (int v = 0; v < 3; v++)
            {
                if (states[p].Registers[v] == "-") continue;
                // Forward: the state right after its next step (or the end of the trace when it has none before To).
                GoTo(s, states[p]);
                int next = stepsOf[v].FirstOrDefault(i => i > p);
                var stop = s.StepInstruction(v);
                if (next == 0)
                {
                    Assert.True(stop.Kind == StopKind.EndOfTrace || s.Icount >= To, $"vCPU {v} from {states[p].Icount}: {stop.Kind} at {s.Icount}");
                }
                else
                {
                    Assert.True(stop.Kind is StopKind.Reached or StopKind.Event, $"vCPU {v} from {states[p].Icount}: {stop.Kind}");
                    Assert.True(states[next] == Capture(s) with { Registers = states[next].Registers } && states[next].Registers.SequenceEqual(Capture(s).Registers),
                        $"vCPU {v} from {states[p].Icount}/{states[p].EventIndex}: expected {states[next].Icount}/{states[next].EventIndex}, got {s.Icount}/{s.EventIndex}");
                    checkedSteps++;
                }

                // Back: the state right before its last step at or before here (the machine step that made it).
                GoTo(s, states[p]);
                int last = stepsOf[v].LastOrDefault(i => i <= p);
                if (last == 0) continue; // before From: not in the reference
                stop = s.ReverseStepInstruction(v);
                Assert.True(stop.Kind is StopKind.Reached or StopKind.Event, $"back vCPU {v} from {states[p].Icount}: {stop.Kind}");
                Assert.True(states[last - 1] == Capture(s) with { Registers = states[last - 1].Registers },
                    $"back vCPU {v} from {states[p].Icount}/{states[p].EventIndex}: expected {states[last - 1].Icount}/{states[last - 1].EventIndex}, got {s.Icount}/{s.EventIndex}");
                Assert.Equal(states[last - 1].Registers, Capture(s).Registers);
                checkedSteps++;
            }
        }
        Assert.True(checkedSteps > 50, $"{checkedSteps} steps checked");
    }
}
