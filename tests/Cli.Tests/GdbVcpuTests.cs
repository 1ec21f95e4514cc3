using System.Text.RegularExpressions;
using Replayvisor.Cli.Gdb;
using Replayvisor.Engine.Trace;
using Replayvisor.Replay.Stepping;
using Replayvisor.Replay.TimeTravel;

namespace Replayvisor.Cli.Tests;

/// <summary>
/// vCPUs as gdb threads (docs/gdbserver.md "vCPUs as threads"): the smp guest recorded with three
/// vCPUs, debugged by the real gdb and packet by packet; the registers gdb shows are checked against
/// the Xen model's parked contexts.
/// </summary>
public class GdbVcpuTests
{
    private const string Regs = "printf \"R %x %x %x %x %x %x %x %x %x %x\\n\", $eax, $ecx, $edx, $ebx, $esp, $ebp, $esi, $edi, $eip, $eflags";


    private static List<string> Lines(string output, string prefix) =>
        output.Split('\n').Where(l => l.StartsWith(prefix, StringComparison.Ordinal)).Select(l => l.Trim()).ToList();

    [Fact]
    public void ABreakpointHitByASecondaryVcpuSwitchesToItsThreadAndInfoThreadsListsEveryVcpu()
    {
        var s = GdbHarness.Run(SmpRecording.ThreeVcpus, "info threads", "break secondary_main", "continue", "info threads", "monitor when",
            "reverse-continue", "info threads");
        // At instruction 0 only vCPU 0 has a context; the others are listed once VCPUOP_initialise gave them one.
        var first = Regex.Matches(s.Gdb, @"Thread (\d) \(vCPU (\d) \(([a-z ,]+)\)\)");
        Assert.True(first.Count == 5, s.Gdb);
        Assert.Equal("Thread 1 (vCPU 0 (running))", first[0].Value);
        Assert.Contains("[Switching to Thread 2]", s.Gdb);
        Assert.Contains("Thread 2 hit Breakpoint 1, ", s.Gdb);
        // The stop: vCPU 1 runs secondary_main, vCPU 0 waits for its reply, vCPU 2 has not run yet.
        Assert.Equal(["Thread 1 (vCPU 0 (blocked))", "Thread 2 (vCPU 1 (running))", "Thread 3 (vCPU 2 (runnable))"],
            first.Skip(1).Take(3).Select(m => m.Value).ToArray());
        Assert.Matches(@"\* 2\s+Thread 2 \(vCPU 1 \(running\)\)\s+0x[0-9a-f]+ in secondary_main", s.Gdb);
        Assert.Matches(@"3\s+Thread 3 \(vCPU 2 \(runnable\)\)\s+0x[0-9a-f]+ in secondary_start", s.Gdb);
        // Back at instruction 0, vCPUs 1 and 2 have no context: one thread again.
        var after = s.Gdb[s.Gdb.LastIndexOf("No more reverse-execution history", StringComparison.Ordinal)..];
        Assert.Equal(["Thread 1 (vCPU 0 (running))"], Regex.Matches(after, @"Thread \d \(vCPU \d \([a-z ,]+\)\)").Select(m => m.Value).ToArray());
        Assert.Equal(0, s.Server.Code);
    }

    [Fact]
    public void EachThreadShowsItsVcpusRegistersAsTheXenModelHasThem()
    {
        var s = GdbHarness.Run(SmpRecording.ThreeVcpus, "break secondary_main", "continue", "monitor when",
            "thread 1", Regs, "thread 2", Regs, "thread 3", Regs, "x/2xw $esp", "info registers eip");
        var regs = Lines(s.Gdb, "R ");
        Assert.True(regs.Count == 3, s.Gdb);
        Assert.Equal(3, regs.Distinct().Count());
        var when = Regex.Match(s.Gdb, @"instruction (\d+),");
        Assert.True(when.Success, s.Gdb);

        // The model at that count: the running vCPU's registers on the CPU, the others' parked contexts.
        using var reader = TraceFiles.Open(SmpRecording.ThreeVcpus);
        var session = new TimeTravelSession(reader);
        session.Goto(ulong.Parse(when.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
        var hv = session.Replayer.Machine.Hypervisor;
        Assert.Equal(1, hv.CurrentVcpu);
        var cpu = session.Replayer.Machine.Cpu;
        string Expected(uint[] g, uint eip, uint eflags) => $"R {string.Join(' ', g.Select(r => r.ToString("x", System.Globalization.CultureInfo.InvariantCulture)))} {eip:x} {eflags:x}";
        Assert.Equal(Expected(hv.Parked(0)!.Cpu.Gpr, hv.Parked(0)!.Cpu.Eip, hv.Parked(0)!.Cpu.Eflags), regs[0]);
        Assert.Equal(Expected(cpu.Gpr, cpu.Eip, cpu.Eflags), regs[1]);
        Assert.Equal(Expected(hv.Parked(2)!.Cpu.Gpr, hv.Parked(2)!.Cpu.Eip, hv.Parked(2)!.Cpu.Eflags), regs[2]);
        // What the guest gave them: secondary_start takes the vCPU's id in ESI (guests/lib/secondary.h).
        Assert.Equal("1", regs[1].Split(' ')[7]);
        Assert.Equal("2", regs[2].Split(' ')[7]);
        Assert.StartsWith("secondary_start", s.Symbols.Name(hv.Parked(2)!.Cpu.Eip));
        Assert.Matches(@"eip\s+0x[0-9a-f]+\s+0x[0-9a-f]+ <secondary_start", s.Gdb);
        // Its memory: the top of its own stack (esp of thread 3), readable through its page tables.
        Assert.Matches(@"0x[0-9a-f]+ <stacks\+\d+>:\s+0x[0-9a-f]{8}\s+0x[0-9a-f]{8}", s.Gdb);
    }

    [Fact]
    public void ThreadPacketsAnswerForExistingVcpusOnly()
    {
        using var reader = TraceFiles.Open(SmpRecording.ThreeVcpus);
        var session = new TimeTravelSession(reader);
        using var conn = new RspConnection(new MemoryStream(), () => { });
        var stub = new GdbStub(session, conn);
        Assert.Equal("m01", stub.Handle("qfThreadInfo"));
        Assert.Equal("l", stub.Handle("qsThreadInfo"));
        Assert.Equal("QC01", stub.Handle("qC"));
        Assert.Equal("OK", stub.Handle("T1"));
        Assert.Equal("E01", stub.Handle("T2"));   // vCPU 1 exists in the model but has no context yet
        Assert.Equal("E01", stub.Handle("T9"));   // not modelled
        Assert.Equal("E01", stub.Handle("Hg2"));
        Assert.Equal("OK", stub.Handle("Hg0"));
        Assert.Equal("OK", stub.Handle("Hc-1"));
        Assert.Equal("E01", stub.Handle("qThreadExtraInfo,2"));
        Assert.Equal("vCPU 0 (running)", Unhex(stub.Handle("qThreadExtraInfo,1")));

        stub.Handle("Z0," + session.Symbols.AddressOf("secondary_main")!.Value.ToString("x", System.Globalization.CultureInfo.InvariantCulture) + ",1");
        string stop = stub.Handle("c");
        Assert.Equal("T05swbreak:;thread:02;", stop);
        Assert.Equal("QC02", stub.Handle("qC"));
        Assert.Equal("m01,02,03", stub.Handle("qfThreadInfo"));
        Assert.Equal("OK", stub.Handle("T3"));
        Assert.Equal("E01", stub.Handle("T4"));
        Assert.Equal("vCPU 2 (runnable)", Unhex(stub.Handle("qThreadExtraInfo,3")));
        string running = stub.Handle("g");
        Assert.Equal("OK", stub.Handle("Hg3"));
        string parked = stub.Handle("g");
        Assert.NotEqual(running, parked);
        Assert.Equal(RegisterFile.ReadAll(session.Replayer.Machine.Hypervisor.Parked(2)!.Cpu), parked);
        Assert.Equal(parked.Substring(8 * 8, 8), stub.Handle("p8")); // eip by itself agrees
        Assert.Equal("E01", stub.Handle("G" + parked)); // writes stay refused
        // A step of thread 3 runs until vCPU 2 executed an instruction of its own; the stop names it and selects it.
        Assert.Equal("T05thread:03;", stub.Handle("vCont;s:3;c"));
        Assert.Equal(2, session.Replayer.Machine.Hypervisor.CurrentVcpu);
        Assert.Equal(RegisterFile.ReadAll(session.Replayer.Machine.Cpu.SaveContext()), stub.Handle("g"));
        Assert.NotEqual(parked, stub.Handle("g"));
        // Back: vCPU 2 before that instruction, its registers as they were parked.
        Assert.Equal("OK", stub.Handle("Hc0"));
        Assert.Equal("T05thread:03;", stub.Handle("bs"));
        Assert.Equal(parked, stub.Handle("g"));
        // A legacy step after Hc steps that thread; after `T` (gdb's `thread N`) with Hc0, gdb's current thread.
        Assert.Equal("OK", stub.Handle("Hc2"));
        Assert.Equal("T05thread:02;", stub.Handle("s"));
        Assert.Equal("OK", stub.Handle("Hc0"));
        Assert.Equal("OK", stub.Handle("T3"));
        Assert.Equal("T05thread:03;", stub.Handle("bs"));
    }

    /// <summary>Where vCPU 1 waits for the CPU: up and runnable, while vCPU 0 keeps it until it blocks.</summary>
    private static ulong Waiting => SmpRecording.Points.Waiting;

    /// <summary>vCPU <paramref name="vcpu"/>'s registers in the form of <see cref="Regs"/>.</summary>
    private static string RegsOf(Engine.Cpu.CpuSnapshot c) =>
        "R " + string.Join(' ', new[] { c.Gpr[0], c.Gpr[1], c.Gpr[2], c.Gpr[3], c.Gpr[4], c.Gpr[5], c.Gpr[6], c.Gpr[7], c.Eip, c.Eflags }
            .Select(r => r.ToString("x", System.Globalization.CultureInfo.InvariantCulture)));

    /// <summary>vCPU 1's next step from <see cref="Waiting"/> as a plain machine-wide stepping shows it: the first step that changes its registers.</summary>
    private static (ulong Before, ulong After, string Regs) NextStepOfVcpu1()
    {
        using var reader = TraceFiles.Open(SmpRecording.ThreeVcpus);
        var session = new TimeTravelSession(reader);
        session.Goto(Waiting);
        var m = session.Replayer.Machine;
        string start = RegsOf(VcpuContexts.Registers(m, 1)!);
        ulong before = session.Icount;
        while (RegsOf(VcpuContexts.Registers(m, 1)!) == start)
        {
            before = session.Icount;
            session.StepInstruction();
        }
        return (before, session.Icount, RegsOf(VcpuContexts.Registers(m, 1)!));
    }

    [Fact]
    public void StepiInAThreadWaitingForTheCpuStepsThatVcpusOwnInstructionAndReverseStepiReturns()
    {
        var s = GdbHarness.Run(SmpRecording.ThreeVcpus, $"monitor goto {Waiting}", "maintenance flush register-cache", "info threads", "thread 2", Regs,
            "stepi", "monitor when", Regs, "info threads", "reverse-stepi", "monitor when", Regs);
        var regs = Lines(s.Gdb, "R ");
        Assert.True(regs.Count == 3, s.Gdb);
        var expected = NextStepOfVcpu1();
        // The stop names thread 2 (gdb stays on it, no "Switching"), after vCPU 1's own next instruction.
        Assert.DoesNotContain("[Switching to Thread", s.Gdb);
        Assert.DoesNotContain("received signal", s.Gdb);
        // monitor output comes on gdb's stderr (after its stdout here).
        var when = Regex.Matches(s.Gdb, @"instruction (\d+), event index").Select(m => ulong.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.True(when.Count == 2, s.Gdb);
        Assert.Equal(expected.After, when[0]);
        Assert.Equal(expected.Regs, regs[1]);
        Assert.NotEqual(regs[0], regs[1]);
        Assert.Matches(@"\* 2\s+Thread 2 \(vCPU 1 \(running\)\)\s+0x[0-9a-f]+ in secondary_start", s.Gdb);
        // Back: right before that instruction, its registers as they were.
        Assert.Equal(expected.Before, when[1]);
        Assert.Equal(regs[0], regs[2]);
    }

    [Fact]
    public void StepiInAWaitingThreadStopsAtABreakpointAnotherVcpuHitsFirst()
    {
        var s = GdbHarness.Run(SmpRecording.ThreeVcpus, $"monitor goto {Waiting}", "maintenance flush register-cache", "info threads", "thread 2",
            "break block", "stepi", "monitor when", "info threads");
        // vCPU 0 calls block() before it gives vCPU 1 the CPU: the stop is its breakpoint, in thread 1.
        Assert.Contains("[Switching to Thread 1]", s.Gdb);
        Assert.Matches(@"Thread 1 hit Breakpoint 1, 0x[0-9a-f]+ in block \(\)", s.Gdb);
        Assert.Matches(@"\* 1\s+Thread 1 \(vCPU 0 \(running\)\)\s+0x[0-9a-f]+ in block", s.Gdb);
        Assert.Matches(@"2\s+Thread 2 \(vCPU 1 \(runnable\)\)\s+0x[0-9a-f]+ in secondary_start \(\)", s.Gdb);
    }

    [Fact]
    public void ReverseStepiInAThreadStopsAtABreakpointAnotherVcpuHitOnTheWayBack()
    {
        // In its upcall handler vCPU 0 runs; vCPU 1 last stepped at its poll (int $0x82), then vCPU 2
        // ran from secondary_start into secondary_main. Going back in thread 2, thread 3's breakpoint comes first.
        ulong inHandler = SmpRecording.Points.InHandler;
        var s = GdbHarness.Run(SmpRecording.ThreeVcpus, $"monitor goto {inHandler}", "maintenance flush register-cache", "info threads", "thread 2",
            "break secondary_main", "reverse-stepi", "monitor when", "thread 2", "reverse-stepi", "monitor when", "x/i $pc");
        Assert.Contains("[Switching to Thread 3]", s.Gdb);
        Assert.Matches(@"Thread 3 hit Breakpoint 1, 0x[0-9a-f]+ in secondary_main \(\)", s.Gdb);
        var when = Regex.Matches(s.Gdb, @"instruction (\d+), event index").Select(m => ulong.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.True(when.Count == 2, s.Gdb);
        // From there, thread 2 back: right before its poll's int $0x82, which came before vCPU 2 ran.
        Assert.True(when[1] < when[0] && when[0] < inHandler, s.Gdb);
        Assert.Matches(@"=> 0x[0-9a-f]+ <hypercall_page\+933>:\s+int\s+\$0x82", s.Gdb);
    }

    [Fact]
    public void StepiInAThreadThatNeverRunsAgainStopsAtTheEndOfTheTrace()
    {
        // vCPU 1 went down (VCPUOP_down) and stays down.
        var s = GdbHarness.Run(SmpRecording.ThreeVcpus, $"monitor goto {SmpRecording.Points.AfterDown}", "maintenance flush register-cache", "info threads", "thread 2", "info threads",
            "stepi", "monitor when");
        Assert.Matches(@"\* 2\s+Thread 2 \(vCPU 1 \(down\)\)", s.Gdb);
        Assert.Contains("No more reverse-execution history.", s.Gdb);
        using var reader = TraceFiles.Open(SmpRecording.ThreeVcpus);
        Assert.Contains($"instruction {reader.Summary!.FinalIcount}", s.Gdb);
    }

    [Fact]
    public void AGotoBackBeforeTheSelectedVcpuWasInitialisedSaysSo()
    {
        var s = GdbHarness.Run(SmpRecording.ThreeVcpus, "break secondary_main", "continue", "thread 3", "monitor goto 1000",
            "thread 1", "info registers eip", "monitor goto 1001");
        Assert.Contains("now at instruction 1000", s.Gdb);
        Assert.Contains("thread 2 (vCPU 1), thread 3 (vCPU 2) have no registers at this instruction (not initialised yet); 'thread 1' selects vCPU 0", s.Gdb);
        Assert.Matches(@"eip\s+0x[0-9a-f]+\s+0x[0-9a-f]+ <_(text|start)\+\d+>", s.Gdb);
        Assert.Single(Regex.Matches(s.Gdb, "no registers at this instruction")); // thread 1 (vCPU 0) always has them
    }

    [Fact]
    public void AGotoBackNamesGdbsCurrentThreadEvenWhenInfoThreadsLeftAnotherSelected()
    {
        // `info threads` ends with Hg3 while gdb's current thread stays thread 2 (vCPU 1, where the breakpoint hit):
        // the goto must not speak of thread 3 alone.
        var s = GdbHarness.Run(SmpRecording.ThreeVcpus, "break secondary_main", "continue", "info threads", "monitor goto 1000");
        Assert.Contains("Thread 2 hit Breakpoint 1", s.Gdb);
        Assert.Contains("thread 2 (vCPU 1), thread 3 (vCPU 2) have no registers at this instruction", s.Gdb);
    }

    [Fact]
    public void ContinuingFromABreakpointOnABlockingHypercallKeepsGdbsStepOverInTheSteppingThread()
    {
        // gdb steps thread 1 over the breakpoint on the sched_op stub's int $0x82 (vCont;s:1); SCHEDOP_block
        // switches vCPU 0 out. The stop must still name thread 1: naming the vCPU switched in made gdb 13
        // abort (infrun.c finish_step_over: Assertion `ecs->event_thread->control.trap_expected' failed).
        var s = GdbHarness.Run(SmpRecording.ThreeVcpus, "break secondary_main", "continue", "delete",
            "break *((char*)hypercall_page + 0x3a5) if $_thread == 1", "continue", "info registers eip", "continue", "monitor when", "info threads");
        Assert.DoesNotContain("internal-error", s.Gdb);
        Assert.Equal(2, Regex.Matches(s.Gdb, @"Thread 1 hit Breakpoint 2, 0x[0-9a-f]+ in hypercall_page").Count);
        Assert.Matches(@"\* 1\s+Thread 1 \(vCPU 0 \(running\)\)", s.Gdb);
    }

    private static string Unhex(string hex) => System.Text.Encoding.UTF8.GetString(Convert.FromHexString(hex));
}
