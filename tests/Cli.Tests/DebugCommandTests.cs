using System.Text.RegularExpressions;

namespace Replayvisor.Cli.Tests;

/// <summary>`replayvisor debug` driven by scripts (stdin and --batch) against a golden trace.</summary>
public class DebugCommandTests
{
    private static string Trace => Path.Combine(Cli.RepoRoot, "traces", "events.rvt");

    private static Cli.Result Debug(params string[] lines) => Cli.RunWithInput(string.Join("\n", lines) + "\n", "debug", Trace);

    private static List<ulong> Positions(string output) =>
        Regex.Matches(output, @"^instruction (\d+)", RegexOptions.Multiline).Select(m => ulong.Parse(m.Groups[1].Value)).ToList();

    [Fact]
    public void BreakContinueAndLookAroundWithSymbols()
    {
        var r = Debug("break upcall", "continue", "registers", "where", "x/2x upcalls", "disassemble upcall 4", "x/2i $eip");
        Assert.True(r.Code == 0, r.ToString());
        Assert.Matches(@"breakpoint 1 at 0xc[0-9a-f]{7} <upcall>", r.Stdout);
        Assert.Matches(@"instruction \d+: breakpoint 1 \(0x[0-9a-f]{8} <upcall>\)", r.Stdout);
        Assert.Matches(@"eip 0x[0-9a-f]{8} <upcall>", r.Stdout);
        Assert.Contains("previous events:", r.Stdout);
        Assert.Contains("upcall vcpu 0 ports", r.Stdout);
        Assert.Matches(@"<upcalls>: 0x00000000", r.Stdout);
        Assert.Matches(@"<upcall\+0x1>\s+89e5\s+mov\s+ebp,esp", r.Stdout);
    }

    [Fact]
    public void StepsForwardAndBackLandWhereTheyStarted()
    {
        var r = Debug("goto 60000", "stepi 25", "nexti 3", "reverse-stepi 28", "when");
        Assert.True(r.Code == 0, r.ToString());
        var at = Positions(r.Stdout);
        Assert.Equal(60000ul, at[0]);
        Assert.Equal(60025ul, at[1]);
        Assert.True(at[2] >= 60028, r.Stdout); // nexti steps over calls: at least three instructions
        Assert.Contains($"instruction {at[2] - 28}, event index", r.Stdout);
    }

    [Fact]
    public void WatchpointsReportOldAndNewValuesBothWays()
    {
        var r = Debug("watch upcalls", "continue", "continue", "reverse-continue", "x/1x upcalls");
        Assert.True(r.Code == 0, r.ToString());
        Assert.Contains("write, old 0x0 new 0x1", r.Stdout);
        Assert.Contains("write, old 0x1 new 0x2", r.Stdout);
        Assert.Matches(@"<upcalls>: 0x00000001", r.Stdout); // back before the second write
    }

    [Fact]
    public void AReadWatchpointStopsAfterTheHypercallThatReadsTheBufferBothWays()
    {
        // hello's first console_io (at 63,691: after its int $0x82) writes the 59 bytes at 0xc0142d98; only Xen reads them.
        var r = Cli.RunWithInput("goto 63600\nrwatch 0xc0142d98 59\ncontinue\ngoto 64000\nreverse-continue\n", "debug",
            Path.Combine(Cli.RepoRoot, "traces", "hello.rvt"));
        Assert.True(r.Code == 0, r.ToString());
        Assert.Matches(@"(?m)^instruction 63691: watchpoint 1 \(read 59 bytes at 0xc0142d98 <boot_stack\+0x3d98>\): read, unchanged$", r.Stdout);
        Assert.Matches(@"(?m)^instruction 63690: watchpoint 1 \(read 59 bytes at 0xc0142d98 <boot_stack\+0x3d98>\): read, unchanged$", r.Stdout);
        Assert.Matches(@"(?m)^=> 0xc0101245 <hypercall_page\+0x245>\s+cd82\s+int\s+82h$", r.Stdout); // back on the int $0x82
    }

    [Fact]
    public void WatchingMemoryUnmappedHereStopsWhereItBecomesMappedBothWays()
    {
        // pagetables maps 0x40001000 (filled with 0xb1) by the hypercall made at 172,268.
        var r = Cli.RunWithInput("watch 0x40001000\ncontinue\nx/1x 0x40001000\ngoto 175000\nreverse-continue\nx/1x 0x40001000\n", "debug",
            Path.Combine(Cli.RepoRoot, "traces", "pagetables.rvt"));
        Assert.True(r.Code == 0, r.ToString());
        Assert.Contains("0x40001000 is not mapped now: the watchpoint also stops where that changes", r.Stdout);
        Assert.Contains("instruction 172269: watchpoint 1 (write 4 bytes at 0x40001000): write, the range became mapped, new 0xb1b1b1b1\n", r.Stdout);
        Assert.Contains("instruction 172268: watchpoint 1 (write 4 bytes at 0x40001000): write, the range became mapped, new 0xb1b1b1b1\n", r.Stdout);
        Assert.Contains("0x40001000: 0xb1b1b1b1\n", r.Stdout);
        Assert.Contains("error: 0x40001000 is not mapped\n", r.Stdout); // back before the mapping
    }

    [Fact]
    public void StepiThenReverseStepiFromAHandlerStopReturnsToTheHandlersEntry()
    {
        // sched-chaos: the first upcall (10,002,214) interrupts task_main+0x56.
        var r = Cli.RunWithInput("catch upcall\ncontinue\ncatch clear\nstepi\nreverse-stepi\nwhen\nreverse-stepi\nwhen\nstepi\n", "debug",
            Path.Combine(Cli.RepoRoot, "traces", "sched-chaos.rvt"));
        Assert.True(r.Code == 0, r.ToString());
        var at = Positions(r.Stdout);
        Assert.Equal([10002214ul, 10002215, 10002214, 10002214, 10002214, 10002214, 10002214], at); // c, si, rsi, when, rsi, when, si
        Assert.Equal(3, Regex.Matches(r.Stdout, @"(?m)^=> 0x[0-9a-f]{8} <hypervisor_callback>\s").Count); // the stop, after rsi, after si
        Assert.Contains("instruction 10002214 after 1 delivery, event index 72\n", r.Stdout);
        Assert.Matches(@"(?m)^=> 0x[0-9a-f]{8} <task_main\+0x56>\s", r.Stdout); // before the delivery
        Assert.Contains("instruction 10002214, event index 70\n", r.Stdout);
    }

    [Fact]
    public void AnEventStopAndWhereNameCodeAddressesAsDumpDoes()
    {
        // events.rvt: the first iret (68,194), made from the hypercall page's stub that trap_return jumps to.
        var dump = Cli.Run("dump", Trace, "--kind", "hypercall");
        string iret = dump.Stdout.Split('\n').First(l => l.Contains("hypercall iret()", StringComparison.Ordinal)).Trim();
        Assert.Contains(" <hypercall_page+0x", iret);
        Assert.Contains("(jumped to from trap_return)", iret);
        var r = Debug("catch hypercall iret", "continue", "where", "events 1");
        Assert.True(r.Code == 0, r.ToString());
        // The stop line's event reads as dump prints it, symbols and all.
        Assert.Contains($": event: {iret}\n", r.Stdout);
        // So do the events around the position in `where` and `events`.
        Assert.Equal(2, Regex.Matches(r.Stdout, $@"(?m)^  #\d+ {Regex.Escape(iret)}$").Count);
        Assert.DoesNotMatch(@"(?m)^  #\d+ .*from 0x[0-9a-f]{8}(?! <)", r.Stdout);
    }

    [Fact]
    public void EventCatchpointsAndTheEdgesOfTheTrace()
    {
        var r = Debug("catch hypercall console_io", "continue", "catch clear", "continue", "reverse-continue", "reverse-stepi");
        Assert.True(r.Code == 0, r.ToString());
        Assert.Contains("event: ", r.Stdout);
        Assert.Contains("hypercall console_io(", r.Stdout);
        Assert.Contains("the end of the trace", r.Stdout);
        Assert.Equal(2, Regex.Matches(r.Stdout, "the beginning of the trace").Count);
    }

    [Fact]
    public void AWatchedRangeThatWrapsPast4GiBIsRefusedAndOneEndingThereIsNot()
    {
        var r = Debug("watch 0xfffffffe 4", "awatch 0xffffffff 2", "rwatch 0xfffffffc 4", "info breakpoints");
        Assert.True(r.Code == 0, r.ToString());
        Assert.Contains("(rv) watch 0xfffffffe 4\nerror: 0xfffffffe + 4 bytes wraps past 0xffffffff: a watched range must end at 0xffffffff or below\n", r.Stdout);
        Assert.Contains("(rv) awatch 0xffffffff 2\nerror: 0xffffffff + 2 bytes wraps past 0xffffffff", r.Stdout);
        // Its last byte at 0xffffffff: watched (unmapped here, as Xen's part of the address space is to a PV guest).
        Assert.Contains("watchpoint 1: read 4 bytes at 0xfffffffc\n", r.Stdout);
        Assert.Single(Regex.Matches(r.Stdout, @"(?m)^watchpoint \d+:"));
        Assert.Equal(2, Regex.Matches(r.Stdout, "^error: ", RegexOptions.Multiline).Count);
    }

    [Fact]
    public void BadCommandsGetOneErrorLineAndTheSessionGoesOn()
    {
        var r = Debug("frobnicate", "break no_such_symbol", "watch 0x1000", "x/4x 0x10", "goto lots", "catch volcano", "when");
        Assert.True(r.Code == 0, r.ToString());
        Assert.Contains("error: unknown command 'frobnicate'", r.Stdout);
        Assert.Contains("error: no symbol 'no_such_symbol'", r.Stdout);
        // Memory unmapped here can be watched (it may become mapped): one line says so, no error.
        Assert.Contains("watchpoint 1: write 4 bytes at 0x00001000\n0x00001000 is not mapped now: the watchpoint also stops where that changes\n", r.Stdout);
        Assert.Contains("error: 'lots' is not a count", r.Stdout);
        Assert.Contains("instruction 0, event index", r.Stdout);
        Assert.Equal(5, Regex.Matches(r.Stdout, "^error: ", RegexOptions.Multiline).Count);
        Assert.Empty(r.Stderr);
    }

    [Fact]
    public void ABatchFileRunsItsCommandsAndAMissingOneIsAnError()
    {
        string script = Cli.TempFile("script.txt");
        File.WriteAllText(script, "# a comment\nbreak count\ncontinue\nwhen\n");
        var r = Cli.Run("debug", Trace, "--batch", script);
        Assert.True(r.Code == 0, r.ToString());
        Assert.Matches(@"instruction \d+: breakpoint 1 \(0x[0-9a-f]{8} <count>\)", r.Stdout);
        Cli.AssertOneLineError(Cli.Run("debug", Trace, "--batch", script + ".missing"), 6, "no such file");
    }

    [Fact]
    public void ADamagedChunkIsReportedWhenTheSessionReachesIt()
    {
        byte[] trace = File.ReadAllBytes(Path.Combine(Cli.RepoRoot, "traces", "sched-chaos.rvt"));
        long last = TraceEdit.LastEventChunkOffset(trace);
        Assert.True(last > 0);
        trace[last + 40] ^= 0xFF; // inside the last events chunk's payload: its checksum no longer matches
        string damaged = Cli.TempFile("damaged.rvt");
        File.WriteAllBytes(damaged, trace);
        var r = Cli.RunWithInput("goto 100\nwhen\ncontinue\n", "debug", damaged);
        Assert.Contains("instruction 100, event index", r.Stdout); // the chunks before the damage replay
        Cli.AssertOneLineError(r, 9, $"offset {last}");
    }
    [Fact]
    public void CatchingAnInputEventByIndexStopsThereBothWays()
    {
        // Event #45 of sched-host-chaos is a time value (an input, not an observed event) at 336,673.
        string chaos = Path.Combine(Cli.RepoRoot, "traces", "sched-host-chaos.rvt");
        var r = Cli.RunWithInput("catch event 45\ncontinue\ngoto 5000000\nreverse-continue\n", "debug", chaos);
        Assert.True(r.Code == 0, r.ToString());
        Assert.Equal(2, Regex.Matches(r.Stdout, @"^instruction 336673: event: 336673 time SystemTimeNs \d+$", RegexOptions.Multiline).Count);
    }
    [Fact]
    public void NumbersTooLargeForTheirPlaceAreErrorsNotCrashesOrOtherNumbers()
    {
        var r = Debug("break count", "delete 4294967297", "info breakpoints", "x/99999999999x $esp", "catch exception 4294967297",
            "catch event 18446744073709551615", "info breakpoints", "when");
        Assert.True(r.Code == 0, r.ToString());
        Assert.Contains("error: no breakpoint or watchpoint 4294967297", r.Stdout); // not breakpoint 1 (4294967297 mod 2^32)
        Assert.Equal(2, Regex.Matches(r.Stdout, @"^1: breakpoint 0x[0-9a-f]{8} <count>$", RegexOptions.Multiline).Count);
        Assert.Matches(@"(?m)^0x[0-9a-f]{8}( <[^>]+>)?: 0x[0-9a-f]{8} 0x", r.Stdout); // x/N with a huge N shows what it can
        Assert.Contains("error: '4294967297' is not an exception vector (0 to 255)", r.Stdout);
        Assert.Contains("error: '18446744073709551615' is not an event index", r.Stdout);
        Assert.DoesNotContain("catching:", r.Stdout);
        Assert.Contains("instruction 0, event index 0", r.Stdout);
        Assert.Empty(r.Stderr);
    }
    [Fact]
    public void WhereShowsAHypercallInFlightOnlyBeforeItIsMade()
    {
        // A hypercall stop is on the stub's ret, after the call; one instruction back is its int 0x82.
        var r = Debug("catch hypercall console_io", "continue", "where", "reverse-stepi", "where");
        Assert.True(r.Code == 0, r.ToString());
        Assert.Single(Regex.Matches(r.Stdout, @"^hypercall in flight: console_io\(cmd=0, count=\d+", RegexOptions.Multiline));
        int back = r.Stdout.IndexOf("(rv) reverse-stepi", StringComparison.Ordinal);
        Assert.True(r.Stdout.IndexOf("hypercall in flight", StringComparison.Ordinal) > back, r.Stdout);
    }
    [Fact]
    public void WhereShowsTheUpcallStateOfTheVcpuThatRuns()
    {
        string trace = Cli.TempFile("smp.rvt");
        Assert.Equal(0, Cli.Run("record", Cli.Guest("smp"), "-o", trace, "--vcpus", "2").Code);
        // The first hypercall vCPU 1 makes; there its upcall mask differs from vCPU 0's.
        var dump = Cli.Run("dump", trace, "--kind", "hypercall", "--json");
        var first = dump.Stdout.Split('\n').First(l => l.Contains("\"vcpu\":1", StringComparison.Ordinal));
        string at = Regex.Match(first, "\"icount\":(\\d+)").Groups[1].Value;
        var r = Cli.RunWithInput($"goto {at}\nwhere\nx/2b shared_info_page+64\n", "debug", trace);
        Assert.True(r.Code == 0, r.ToString());
        // vcpu_info[1]: evtchn_upcall_pending, then evtchn_upcall_mask (docs/xen-abi.md §4.3)
        var info = Regex.Match(r.Stdout, @"<shared_info_page\+0x40>: ([0-9a-f]{2}) ([0-9a-f]{2})");
        Assert.True(info.Success, r.Stdout);
        string mask = info.Groups[2].Value == "00" ? "unmasked" : "masked";
        Assert.Contains($"vcpu 1 upcalls: {mask}, pending flag {Convert.ToInt32(info.Groups[1].Value, 16)}, pending ports", r.Stdout);
    }
    [Fact]
    public void ListingEventsUpToADamagedChunkTheReplayHasNotReachedEndsTheListNotTheSession()
    {
        byte[] trace = File.ReadAllBytes(Path.Combine(Cli.RepoRoot, "traces", "sched-chaos.rvt"));
        long last = TraceEdit.LastEventChunkOffset(trace);
        trace[last + 40] ^= 0xFF;
        string damaged = Cli.TempFile("damaged.rvt");
        File.WriteAllBytes(damaged, trace);
        ulong before;
        using (var reader = Replayvisor.Engine.Trace.TraceReader.Open(File.OpenRead(damaged)))
        {
            Assert.True(reader.Index.Count >= 2 && reader.Index[^1].Offset == last);
            before = reader.Index[^2].LastIcount - 1; // the last event before the damaged chunk is still ahead
        }
        var r = Cli.RunWithInput($"goto {before}\nevents 2\nwhere\nwhen\n", "debug", damaged);
        Assert.True(r.Code == 0, r.ToString());
        Assert.Equal(2, Regex.Matches(r.Stdout, $@"^  \(no more: damaged chunk: .*offset {last}\)\)$", RegexOptions.Multiline).Count);
        Assert.Contains($"instruction {before}, event index", r.Stdout);
    }

    [Fact]
    public void RegistersOfAnotherVcpuAndTheListOfVcpus()
    {
        var r = Cli.RunWithInput(string.Join("\n", "vcpus", "registers --vcpu 1", "break secondary_main", "continue", "vcpus",
            "registers", "registers --vcpu 2", "info registers --vcpu 0", "regs --vcpu 3", "regs --vcpu") + "\n", "debug", SmpRecording.ThreeVcpus);
        Assert.True(r.Code == 0, r.ToString());
        // At instruction 0 only vCPU 0 has registers.
        Assert.Contains("* vcpu 0 (running)  eip 0xc0100000 <_start>\n  vcpu 1 (not initialised)\n  vcpu 2 (not initialised)\n", r.Stdout);
        Assert.Contains("error: vCPU 1 has no registers here: it is not initialised at instruction 0", r.Stdout);
        // vCPU 1 at its breakpoint; vCPU 0 waits for it; vCPU 2 is where VCPUOP_initialise started it, its id in ESI.
        Assert.Matches(@"  vcpu 0 \(blocked\)  eip 0x[0-9a-f]{8} <hypercall_page\+0x[0-9a-f]+>\n\* vcpu 1 \(running\)  eip 0x[0-9a-f]{8} <secondary_main>\n  vcpu 2 \(runnable\)  eip 0x[0-9a-f]{8} <secondary_start>\n", r.Stdout);
        var esi = Regex.Matches(r.Stdout, @"esi 0x([0-9a-f]{8})").Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(["00000001", "00000002", "00000000"], esi);
        Assert.Matches(@"vcpu 2 \(runnable\)\neax .*\n.*\neip 0x[0-9a-f]{8} <secondary_start>", r.Stdout);
        Assert.Matches(@"vcpu 0 \(blocked\)\neax .*\n.*\neip 0x[0-9a-f]{8} <hypercall_page", r.Stdout);
        Assert.Contains("error: no vCPU 3: the trace has 3 (0 to 2)", r.Stdout);
        Assert.Contains("error: usage: registers [--vcpu N]", r.Stdout);
    }

    [Fact]
    public void StepiOfAVcpuWaitingForTheCpuStepsItsOwnInstructionAndReverseStepiReturns()
    {
        // vCPU 1 is runnable and waits while vCPU 0 runs on until it blocks.
        var p = SmpRecording.Points;
        var r = Cli.RunWithInput(string.Join("\n", $"goto {p.Waiting}", "registers --vcpu 1", "stepi --vcpu 1", "when", "registers --vcpu 1",
            "reverse-stepi --vcpu 1", "when", "registers --vcpu 1", "stepi --vcpu 3", "stepi --vcpu", "stepi 1 2", "reverse-stepi --vcpu x",
            $"goto {p.AfterDown}", "stepi --vcpu 1") + "\n", "debug", SmpRecording.ThreeVcpus);
        Assert.True(r.Code == 0, r.ToString());
        var regs = Regex.Matches(r.Stdout, @"vcpu 1 \(([a-z ,]+)\)\neax .*\n.*\neip (0x[0-9a-f]{8}) <([^>]+)>").Select(m => m.Groups[3].Value).ToList();
        Assert.True(regs.Count == 3, r.Stdout);
        // Its first instruction there: the cld at secondary_start (one byte), once vCPU 0 blocked.
        Assert.Equal(["secondary_start", "secondary_start+0x1", "secondary_start"], regs);
        var when = Regex.Matches(r.Stdout, @"^instruction (\d+), event index", RegexOptions.Multiline).Select(m => ulong.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(2, when.Count);
        Assert.Equal(when[0] - 1, when[1]);
        Assert.True(when[0] > p.Waiting + 10_000, r.Stdout); // a long wait
        // Registers back exactly as they were.
        var all = Regex.Matches(r.Stdout, @"vcpu 1 \([a-z ,]+\)\n((?:.*\n){4})").Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(all[0], all[2]);
        Assert.Contains("error: no vCPU 3: the trace has 3 (0 to 2)", r.Stdout);
        Assert.Equal(2, Regex.Matches(r.Stdout, @"error: usage: stepi \[N\] \[--vcpu V\]").Count);
        Assert.Contains("error: 'x' is not a count", r.Stdout);
        // vCPU 1 went down: its step ends at the end of the trace.
        Assert.Matches(@"instruction \d+: the end of the trace", r.Stdout);
    }

    [Fact]
    public void AStepOfAVcpuStopsAtABreakpointAnotherVcpuHitsOnTheWayForwardsAndBack()
    {
        // In its first IPI upcall handler vCPU 0 runs; vCPU 1 last stepped at its poll (int $0x82), then
        // vCPU 2 ran from secondary_start into secondary_main and polled too.
        var p = SmpRecording.Points;
        var r = Cli.RunWithInput(string.Join("\n", $"goto {p.InHandler}", "break secondary_main", "reverse-stepi --vcpu 1", "vcpus", "reverse-stepi --vcpu 1",
            $"goto {p.Waiting}", "break block", "stepi --vcpu 1", "vcpus") + "\n", "debug", SmpRecording.ThreeVcpus);
        Assert.True(r.Code == 0, r.ToString());
        Assert.Matches(@"instruction \d+: breakpoint 1 \(0x[0-9a-f]{8} <secondary_main>\), hit by vcpu 2\n=> 0x[0-9a-f]{8} <secondary_main>", r.Stdout);
        Assert.Matches(@"\* vcpu 2 \(running\)  eip 0x[0-9a-f]{8} <secondary_main>", r.Stdout);
        // Past it, back to right before vCPU 1's poll.
        Assert.Matches(@"instruction \d+\n=> 0x[0-9a-f]{8} <hypercall_page\+0x3a5>\s+cd82\s+int\s+82h", r.Stdout);
        // Forwards: vCPU 1 waits for the CPU, and vCPU 0 calls block() before it gives it up.
        Assert.Matches(@"instruction \d+: breakpoint 2 \(0x[0-9a-f]{8} <block>\), hit by vcpu 0\n=> 0x[0-9a-f]{8} <block>", r.Stdout);
        Assert.Matches(@"\* vcpu 0 \(running\)  eip 0x[0-9a-f]{8} <block>\n  vcpu 1 \(runnable\)  eip 0x[0-9a-f]{8} <secondary_start>", r.Stdout);
    }

    [Fact]
    public void RegistersRefusesArgumentsItDoesNotUseInsteadOfShowingTheRunningVcpu()
    {
        var r = Cli.RunWithInput(string.Join("\n", "break secondary_main", "continue", "registers eip --vcpu 2", "regs eax",
            "info registers --vcpu 2 eax", "info registers") + "\n", "debug", SmpRecording.ThreeVcpus);
        Assert.True(r.Code == 0, r.ToString());
        Assert.Equal(3, Regex.Matches(r.Stdout, @"error: usage: registers \[--vcpu N\] \(it shows every register\)").Count);
        // Only the plain `info registers` printed registers: vCPU 1's, where the breakpoint hit.
        Assert.Single(Regex.Matches(r.Stdout, @"^eip 0x", RegexOptions.Multiline));
        Assert.Matches(@"eip 0x[0-9a-f]{8} <secondary_main>", r.Stdout);
    }
}
