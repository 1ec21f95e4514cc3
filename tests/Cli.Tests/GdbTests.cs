using System.Text.RegularExpressions;

namespace Replayvisor.Cli.Tests;

/// <summary>The real gdb (batch mode) debugs golden traces through `replayvisor gdbserver`, forwards and backwards.</summary>
public class GdbTests
{
    private const string Regs = "printf \"R %x %x %x %x %x %x %x %x %x %x\\n\", $eax, $ecx, $edx, $ebx, $esp, $ebp, $esi, $edi, $eip, $eflags";

    private static List<string> Lines(string output, string prefix) =>
        output.Split('\n').Where(l => l.StartsWith(prefix, StringComparison.Ordinal)).Select(l => l.Trim()).ToList();

    [Fact]
    public void BreakOnAGuestFunctionBySymbolContinueAndReadRegistersAndMemory()
    {
        var s = GdbHarness.Run("events.rvt", "break upcall", "continue", "printf \"EIP %x\\n\", $eip", "x/2xw $esp", "info registers eflags", "monitor when");
        // gdb places a breakpoint on a function after its prologue: the stop is where gdb said it put it, inside upcall.
        var at = Regex.Match(s.Gdb, "Breakpoint 1 at 0x([0-9a-f]+)");
        Assert.True(at.Success, s.Gdb);
        uint address = Convert.ToUInt32(at.Groups[1].Value, 16);
        Assert.StartsWith("upcall", s.Symbols.Name(address));
        Assert.Contains($"EIP {address:x}", s.Gdb);
        Assert.Contains("Breakpoint 1, ", s.Gdb);
        Assert.Matches(@"0x[0-9a-f]+:\s+0x[0-9a-f]{8}\s+0x[0-9a-f]{8}", s.Gdb);
        Assert.Matches(@"eflags\s+0x[0-9a-f]+\s+\[", s.Gdb);
        Assert.Matches(@"instruction \d+, event index \d+", s.Gdb);
        Assert.Equal(0, s.Server.Code);
    }

    [Fact]
    public void StepiThenReverseStepiRetracesEveryRegisterSet()
    {
        const int n = 40;
        var commands = new List<string> { "break count", "continue", Regs };
        for (int i = 0; i < n; i++) { commands.Add("stepi"); commands.Add(Regs); }
        for (int i = 0; i < n; i++) { commands.Add("reverse-stepi"); commands.Add(Regs); }
        var s = GdbHarness.Run("events.rvt", commands.ToArray());
        var regs = Lines(s.Gdb, "R ");
        Assert.True(regs.Count == 2 * n + 1, s.Gdb);
        for (int i = 0; i <= n; i++) Assert.Equal(regs[i], regs[2 * n - i]);
        Assert.True(regs.Distinct().Count() > n / 2, "stepping should change the registers");
    }

    [Fact]
    public void ReverseContinueReturnsToTheEarlierBreakpointHit()
    {
        var s = GdbHarness.Run("events.rvt", "break count", "continue", "monitor when", "continue", "monitor when", "reverse-continue", "monitor when");
        var when = Lines(s.Gdb, "instruction ");
        Assert.True(when.Count == 3, s.Gdb);
        Assert.NotEqual(when[0], when[1]);
        Assert.Equal(when[0], when[2]);
    }

    [Fact]
    public void AWatchpointAndReverseContinueFindTheLastWrite()
    {
        var s = GdbHarness.Run("events.rvt", "continue", "monitor when", "watch *(int *)&upcalls", "reverse-continue", "printf \"V %d\\n\", *(int *)&upcalls", "stepi", "printf \"V %d\\n\", *(int *)&upcalls");
        Assert.Contains("No more reverse-execution history.", s.Gdb); // the forward continue reached the end
        Assert.Contains("atchpoint 1: *(int *)&upcalls", s.Gdb);
        var v = Lines(s.Gdb, "V ").Select(l => int.Parse(l[2..], System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.True(v.Count == 2, s.Gdb);
        Assert.Equal(v[0] + 1, v[1]);
        Assert.Matches(@"Old value = \d+\s+New value = \d+", s.Gdb);
    }

    [Fact]
    public void TheBeginningAndEndOfTheTraceAreReportedAsSuch()
    {
        var s = GdbHarness.Run("events.rvt", "continue", "monitor when", "reverse-continue", "monitor when", "reverse-stepi");
        Assert.Equal(3, Regex.Matches(s.Gdb, "No more reverse-execution history").Count);
        var when = Lines(s.Gdb, "instruction ");
        Assert.True(when.Count == 2, s.Gdb);
        Assert.StartsWith("instruction 98821,", when[0]);
        Assert.StartsWith("instruction 0,", when[1]);
    }

    [Fact]
    public void WritesAreRefusedAndUnknownMonitorCommandsAnsweredNotCrashedOn()
    {
        var s = GdbHarness.Run("events.rvt", "set var $eax = 5", "set var *(int *)&upcalls = 3", "monitor frobnicate", "monitor goto 500", "monitor when", "monitor events 2");
        Assert.Contains("unknown monitor command 'frobnicate'", s.Gdb);
        Assert.Contains("instruction 500,", s.Gdb);
        Assert.Contains("next events:", s.Gdb);
        Assert.Equal(0, s.Server.Code);
    }

    [Fact]
    public void AWatchpointThatWrapsPast4GiBCannotBeInsertedAndOneEndingThereCan()
    {
        // Z2 at 0xfffffffe for 4 bytes is E01: gdb says it could not insert it and does not resume.
        var s = GdbHarness.Run("events.rvt", "watch *(int *)0xfffffffe", "continue", "monitor when",
            "delete", "watch *(int *)0xfffffffc", "continue", "monitor when");
        Assert.Contains("Could not insert hardware watchpoint 1.", s.Gdb);
        var when = Lines(s.Gdb, "instruction ");
        Assert.True(when.Count == 2, s.Gdb);
        Assert.Equal("instruction 0, event index 0", when[0]);
        // 4 bytes ending at 0xffffffff are watched: never mapped in this run, so continue goes to the end of the trace.
        Assert.DoesNotContain("Could not insert hardware watchpoint 2", s.Gdb);
        Assert.StartsWith("instruction 98821,", when[1]);
        Assert.Equal(0, s.Server.Code);
    }

    [Fact]
    public void CtrlCInterruptsAContinueAndTheSessionGoesOn()
    {
        // A (hardware) watchpoint on bytes nobody writes makes continue check every instruction:
        // the 61.6 M instructions of sched-chaos take long enough to be interrupted.
        var s = GdbHarness.RunInterrupted("sched-chaos.rvt", new Regex("^(vCont;c|c$)"),
            "watch *(int *)&guest_name", "continue", "monitor when", "stepi", "reverse-stepi", "monitor when");
        Assert.Contains("Hardware watchpoint 1", s.Gdb);
        Assert.Contains("Program received signal SIGINT", s.Gdb);
        var when = Lines(s.Gdb, "instruction ");
        Assert.True(when.Count == 2, s.Gdb);
        Assert.Equal(when[0], when[1]);
        ulong at = ulong.Parse(when[0].Split(' ', ',')[1], System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(at, 0ul, 61_000_000ul); // stopped where the interrupt came, not at the end (61,560,367)
        Assert.Equal(0, s.Server.Code);
    }

    [Fact]
    public void AfterMonitorGotoTheDocumentedFlushShowsTheNewRegisters()
    {
        // docs/gdbserver.md: gdb keeps its register cache across a monitor command, so `monitor goto`
        // is followed by `maintenance flush register-cache` (the rv-goto command defined there).
        string script = Cli.TempFile("rv-goto.gdb");
        File.WriteAllText(script, GdbGotoScript());
        var s = GdbHarness.Run("events.rvt", $"source {script}", "stepi", Regs, "rv-goto 500", Regs, "stepi", "reverse-stepi", Regs, "rv-goto 1", Regs);
        var regs = Lines(s.Gdb, "R ");
        Assert.True(regs.Count == 4, s.Gdb);
        Assert.NotEqual(regs[0], regs[1]);
        Assert.Equal(regs[1], regs[2]);  // what gdb showed after the goto is what stepping back to 500 shows
        Assert.Equal(regs[0], regs[3]);  // back at instruction 1
        Assert.Contains("now at instruction 500", s.Gdb);
    }

    /// <summary>The rv-goto definition as docs/gdbserver.md gives it (the test reads it from the doc, so the doc stays right).</summary>
    private static string GdbGotoScript()
    {
        string doc = File.ReadAllText(Path.Combine(Cli.RepoRoot, "docs", "gdbserver.md"));
        int start = doc.IndexOf("define rv-goto", StringComparison.Ordinal);
        Assert.True(start >= 0, "docs/gdbserver.md defines rv-goto");
        int end = doc.IndexOf("\nend", start, StringComparison.Ordinal);
        return doc[start..(end + 4)] + "\n";
    }

    [Fact]
    public void AWatchpointLongerThanEightBytesStopsAtAWriteInsideIt()
    {
        // hits[] holds one int per event-channel port; the timer's port is among the first four.
        var s = GdbHarness.Run("events.rvt", "watch *(char(*)[16])&hits", "continue", "printf \"EIP %x\\n\", $eip");
        Assert.Contains("Hardware watchpoint 1: *(char(*)[16])&hits", s.Gdb);
        Assert.Matches(@"Old value = .*\s+New value = .*\\001", s.Gdb);
        var eip = Regex.Match(s.Gdb, "EIP ([0-9a-f]+)");
        Assert.True(eip.Success, s.Gdb);
        Assert.StartsWith("count", s.Symbols.Name(Convert.ToUInt32(eip.Groups[1].Value, 16)));
    }

    [Fact]
    public void AnIndexedTraceSeeksFromItsKeyframesToTheSameRegisters()
    {
        var plain = GdbHarness.Run("events.rvt", "source " + GotoScriptFile(), "rv-goto 90000", Regs);
        var indexed = GdbHarness.Run("v4/events-indexed.rvt", "source " + GotoScriptFile(), "rv-goto 90000", Regs);
        var a = Lines(plain.Gdb, "R ");
        Assert.True(a.Count == 1, plain.Gdb);
        Assert.Equal(a, Lines(indexed.Gdb, "R "));
    }

    private static string GotoScriptFile()
    {
        string script = Cli.TempFile("rv-goto.gdb");
        File.WriteAllText(script, GdbGotoScript());
        return script;
    }
    [Fact]
    public void MalformedPacketsGetAnErrorReplyAndTheStubGoesOn()
    {
        // Not what gdb sends, but what a stub must survive: an empty packet and a monitor command that is not hex.
        using var reader = Replayvisor.Engine.Trace.TraceReader.Open(File.OpenRead(GdbHarness.TracePath("events.rvt")));
        var session = new Replayvisor.Replay.TimeTravel.TimeTravelSession(reader);
        using var conn = new Replayvisor.Cli.Gdb.RspConnection(new MemoryStream(), () => { });
        var stub = new Replayvisor.Cli.Gdb.GdbStub(session, conn);
        Assert.Equal("", stub.Handle(""));
        Assert.Equal("E01", stub.Handle("qRcmd,zz"));
        Assert.Equal("E01", stub.Handle("qRcmd,776"));
        Assert.Equal("OK", stub.Handle("qRcmd,7768656e")); // "when": its output goes out in an O packet
        Assert.StartsWith("T05", stub.Handle("s"));
    }
    [Fact]
    public void AWatchpointOnMemoryUnmappedHereCanBeInsertedSoGdbResumesAfterAReverseHit()
    {
        // pagetables maps 0x40001000 at instruction 172,269. Going back to that mapping leaves gdb where the
        // range is unmapped, and gdb inserts the watchpoint again (Z2) before it resumes.
        var s = GdbHarness.Run("pagetables.rvt", "source " + GotoScriptFile(), "rv-goto 175000", "watch *(int *)0x40001000",
            "reverse-continue", "monitor when", "continue", "monitor when");
        Assert.DoesNotContain("Could not insert", s.Gdb);
        var when = Lines(s.Gdb, "instruction ");
        Assert.True(when.Count == 2, s.Gdb);
        Assert.StartsWith("instruction 172268,", when[0]);
        Assert.StartsWith("instruction 172269,", when[1]);
        Assert.Contains("New value = <unreadable>", s.Gdb);
        Assert.Contains("Old value = <unreadable>", s.Gdb);
    }
    [Fact]
    public void RwatchStopsAfterTheHypercallThatReadsTheBufferBothWays()
    {
        // multicall's first batch (3 entries of 32 bytes at 0xc0143ed0) is read by Xen at 122,095 (after its
        // int $0x82), then by check_results; going back from there, the hypercall is the earlier read.
        var s = GdbHarness.Run("multicall.rvt", "source " + GotoScriptFile(), "rv-goto 122000", "rwatch *(char(*)[96])0xc0143ed0",
            "continue", "monitor when", "continue", "monitor when", "reverse-continue", "reverse-continue", "monitor when", "x/i $pc");
        var when = Lines(s.Gdb, "instruction ");
        Assert.True(when.Count == 3, s.Gdb);
        Assert.StartsWith("instruction 122095,", when[0]);
        Assert.DoesNotMatch(@"^instruction 12209\d,", when[1]); // the next read is the guest's own
        Assert.StartsWith("instruction 122094,", when[2]);
        Assert.Matches(@"=> 0x[0-9a-f]+ <hypercall_page\+\d+>:\s+int\s+\$0x82", s.Gdb);
        Assert.Contains("Hardware read watchpoint 1: *(char(*)[96])0xc0143ed0", s.Gdb);
    }

    [Fact]
    public void ReverseStepiFromAStepOutOfAHandlersEntryReturnsToThatEntry()
    {
        // sched-chaos: the first upcall (10,002,214) enters hypervisor_callback; stepi runs its first
        // instruction and reverse-stepi must give back exactly the registers of the breakpoint stop.
        var s = GdbHarness.Run("sched-chaos.rvt", "break *hypervisor_callback", "continue", Regs, "stepi", Regs, "reverse-stepi", Regs,
            "monitor when", "reverse-stepi", "monitor when");
        var regs = Lines(s.Gdb, "R ");
        Assert.True(regs.Count == 3, s.Gdb);
        Assert.NotEqual(regs[0], regs[1]);
        Assert.Equal(regs[0], regs[2]);
        var when = Lines(s.Gdb, "instruction ");
        Assert.True(when.Count == 2, s.Gdb);
        Assert.StartsWith("instruction 10002214 after 1 delivery,", when[0]);
        Assert.StartsWith("instruction 10002214,", when[1]); // one more step back: before the delivery
    }

    [Fact]
    public void DisposingTheConnectionBeforeItsReaderSeesTheEndDoesNotCrashTheProcess()
    {
        // The server disposes the connection when gdb detaches; the reader thread then meets the closed
        // stream and must not throw on its own thread (which would kill the process).
        var stream = new EndsWhenDisposedStream();
        var conn = new Replayvisor.Cli.Gdb.RspConnection(stream, () => { });
        Assert.True(stream.Reading.Wait(10_000));
        conn.Dispose();
        Assert.True(stream.Ended.Wait(10_000));
        Thread.Sleep(300); // the reader's last steps after the end (an exception there would end the test host)
    }

    private sealed class EndsWhenDisposedStream : Stream
    {
        private readonly ManualResetEventSlim _disposed = new();
        public ManualResetEventSlim Reading { get; } = new();
        public ManualResetEventSlim Ended { get; } = new();
        public override int ReadByte()
        {
            Reading.Set();
            _disposed.Wait();
            Ended.Set();
            return -1;
        }
        protected override void Dispose(bool disposing) { _disposed.Set(); base.Dispose(disposing); }
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => 0;
        public override long Position { get => 0; set { } }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => ReadByte() < 0 ? 0 : 1;
        public override long Seek(long offset, SeekOrigin origin) => 0;
        public override void SetLength(long value) { }
        public override void Write(byte[] buffer, int offset, int count) { }
    }
}
