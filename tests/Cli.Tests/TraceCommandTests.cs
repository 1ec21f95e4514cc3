using System.Text.Json;

namespace Replayvisor.Cli.Tests;

public class TraceCommandTests
{
    private static readonly Lazy<string> Sched = new(() =>
    {
        string f = Cli.TempFile("sched.rvt");
        var r = Cli.Run("record", Cli.Guest("sched-pae"), "-o", f, "--checkpoint-interval", "5000000");
        Assert.True(r.Code == 0, r.ToString());
        return f;
    });

    [Fact]
    public void RecordThenReplayIsBitExact()
    {
        var r = Cli.Run("replay", Sched.Value);
        Assert.True(r.Code == 0, r.ToString());
        Assert.Contains("task B 3", r.Stdout);
        Assert.Contains("bit-exact", r.Stderr);
        var q = Cli.Run("replay", Sched.Value, "--quiet");
        Assert.Equal(0, q.Code);
        Assert.Equal("", q.Stdout);
    }

    [Fact]
    public void RecordBehavesLikeRunForTheConsoleAndExitCode()
    {
        string f = Cli.TempFile("crash.rvt");
        var r = Cli.Run("record", Cli.Guest("crash"), "-o", f);
        Assert.Equal(3, r.Code);
        Assert.Contains("FAIL crash", r.Stdout);
        var p = Cli.Run("replay", f);
        Assert.True(p.Code == 0, p.ToString());
        Assert.Contains("crashed", p.Stderr);
    }

    [Fact]
    public void InfoDescribesTheTrace()
    {
        var r = Cli.Run("info", Sched.Value);
        Assert.True(r.Code == 0, r.ToString());
        Assert.Contains("complete", r.Stdout);
        Assert.Contains("sched-pae.elf", r.Stdout);
        Assert.Contains("multicall", r.Stdout);
        Assert.Contains("ratio", r.Stdout);
        var j = Cli.Run("info", Sched.Value, "--json");
        using var doc = JsonDocument.Parse(j.Stdout);
        Assert.True(doc.RootElement.GetProperty("complete").GetBoolean());
        Assert.True(doc.RootElement.GetProperty("instructions").GetUInt64() > 1_000_000);
        Assert.True(doc.RootElement.GetProperty("hypercallsByName").GetProperty("multicall").GetInt64() > 0);
    }

    [Fact]
    public void DumpPrintsOneEventPerLine()
    {
        var all = Cli.Run("dump", Sched.Value);
        Assert.Equal(0, all.Code);
        Assert.Contains(all.Stdout.Split('\n'), l => l.Contains("hypercall multicall(", StringComparison.Ordinal));
        var hc = Cli.Run("dump", Sched.Value, "--kind", "hypercall", "--json");
        foreach (string line in hc.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            using var doc = JsonDocument.Parse(line);
            Assert.Equal("hypercall", doc.RootElement.GetProperty("kind").GetString());
        }
        var window = Cli.Run("dump", Sched.Value, "--from", "20000000", "--to", "30000000");
        foreach (string line in window.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            ulong icount = ulong.Parse(line.TrimStart().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
            Assert.InRange(icount, 20_000_000ul, 30_000_000ul);
        }
        Cli.AssertOneLineError(Cli.Run("dump", Sched.Value, "--kind", "bogus"), 2, "bogus");
    }

    [Fact]
    public void DumpOfARangeThatEndsBeforeItStartsIsMisuse()
    {
        // It printed nothing and exited 0, as if the trace had no events there.
        var r = Cli.Run("dump", Sched.Value, "--from", "100", "--to", "10");
        Cli.AssertOneLineError(r, 2, "--from 100 is after --to 10");
        Assert.Equal("", r.Stdout);
        // Both ends are inclusive: a one-count range is a range (the trace's first checkpoint is at 5,000,000).
        var one = Cli.Run("dump", Sched.Value, "--from", "5000000", "--to", "5000000");
        Assert.True(one.Code == 0, one.ToString());
        Assert.Contains(one.Stdout.Split('\n'), l => l.TrimStart().StartsWith("5000000 ", StringComparison.Ordinal));
    }

    [Fact]
    public void DumpNamesGuestCodeAddressesBySymbol()
    {
        var r = Cli.Run("dump", Path.Combine(Cli.RepoRoot, "traces", "traps-pae.rvt"), "--kind", "exception");
        Assert.True(r.Code == 0, r.ToString());
        // traps.c raises its exceptions from guest_main: each eip is printed as function+offset.
        Assert.Matches(@"eip 0xc0[0-9a-f]{6} <guest_main\+0x[0-9a-f]+>", r.Stdout);
        var j = Cli.Run("dump", Path.Combine(Cli.RepoRoot, "traces", "traps-pae.rvt"), "--kind", "exception", "--json");
        using var doc = JsonDocument.Parse(j.Stdout.Split('\n')[0]);
        Assert.StartsWith("guest_main+0x", doc.RootElement.GetProperty("symbol").GetString());
    }

    [Fact]
    public void DumpNamesTheFunctionThatJumpsToTheIretStub()
    {
        // guests/lib/entry.S: trap_return jumps to hypercall_page + 23 * 32 (iret is never called).
        string trace = Path.Combine(Cli.RepoRoot, "traces", "traps-pae.rvt");
        var r = Cli.Run("dump", trace, "--kind", "hypercall");
        Assert.True(r.Code == 0, r.ToString());
        var irets = r.Stdout.Split('\n').Where(l => l.Contains(" hypercall iret(", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(irets);
        Assert.All(irets, l => Assert.EndsWith("<hypercall_page+0x2e6> (jumped to from trap_return)", l));
        Assert.DoesNotContain(r.Stdout.Split('\n'), l => !l.Contains("iret(", StringComparison.Ordinal) && l.Contains("jumped to", StringComparison.Ordinal));
        var j = Cli.Run("dump", trace, "--kind", "hypercall", "--json");
        var jsonIrets = j.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement)
            .Where(e => e.GetProperty("name").GetString() == "iret").ToList();
        Assert.NotEmpty(jsonIrets);
        Assert.All(jsonIrets, e => Assert.Equal("trap_return", e.GetProperty("jumpedFrom").GetString()));
    }

    [Fact]
    public void ATamperedTraceDivergesWithAReport()
    {
        // Flip the result of the first hypercall event in the decoded stream by re-encoding the trace.
        byte[] bad = TraceEdit.ChangeFirstHypercallResult(File.ReadAllBytes(Sched.Value));
        string f = Cli.TempFile("tampered.rvt");
        File.WriteAllBytes(f, bad);
        var r = Cli.Run("replay", f);
        Assert.True(r.Code == 10, r.ToString());
        Assert.Contains("divergence at instruction", r.Stderr);
        Assert.Contains("expected:", r.Stderr);
        Assert.Contains("eax", r.Stderr);
        Assert.Contains("=>", r.Stderr);
        Assert.Matches(@"=> [0-9a-f]{8} .* <[a-z_]+(\+0x[0-9a-f]+)?>", r.Stderr); // the code is labelled with guest symbols
    }

    [Fact]
    public void ADivergenceReportSaysWhichFieldDifferedAndNamesTheEventsAsDumpDoes()
    {
        // traps-pae.rvt: the first iret's result (0 or 1, docs/xen-abi.md) is one higher in the tampered trace.
        byte[] bad = TraceEdit.ChangeFirstHypercallResult(File.ReadAllBytes(Path.Combine(Cli.RepoRoot, "traces", "traps-pae.rvt")), 23);
        string f = Cli.TempFile("tampered-iret.rvt");
        File.WriteAllBytes(f, bad);
        var r = Cli.Run("replay", f);
        Assert.True(r.Code == 10, r.ToString());
        var lines = r.Stderr.Split('\n');
        string expected = Assert.Single(lines, l => l.StartsWith("  expected: ", StringComparison.Ordinal));
        string actual = Assert.Single(lines, l => l.StartsWith("  actual: ", StringComparison.Ordinal));
        // dump's line: the call decoded, its site with the symbol, and the function that jumps to the iret stub.
        Assert.Matches(@"^  expected: \d+ hypercall iret\(\) = (\d+) from 0x[0-9a-f]{8} <hypercall_page\+0x2e6> \(jumped to from trap_return\)$", expected);
        uint recorded = uint.Parse(System.Text.RegularExpressions.Regex.Match(expected, @"= (\d+) from").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.Contains($"iret() = {recorded - 1} from", actual, StringComparison.Ordinal);
        Assert.Contains($"  differs in: Result (expected {recorded}, actual {recorded - 1})", lines);
    }

    [Fact]
    public void BadTraceFilesEachGetTheirOwnExitCode()
    {
        Cli.AssertOneLineError(Cli.Run("replay", "/no/such.rvt"), 6, "no such file");
        Cli.AssertOneLineError(Cli.Run("info", "/etc/hostname"), 8, "not a Replayvisor trace");
        string empty = Cli.TempFile("empty.rvt");
        File.WriteAllBytes(empty, []);
        Cli.AssertOneLineError(Cli.Run("info", empty), 12, "empty");
        byte[] good = File.ReadAllBytes(Sched.Value);
        string newer = Cli.TempFile("newer.rvt");
        byte[] n = (byte[])good.Clone();
        n[8] = 0x7F;
        File.WriteAllBytes(newer, n);
        Cli.AssertOneLineError(Cli.Run("replay", newer), 11, "newer");
        string truncated = Cli.TempFile("truncated.rvt");
        File.WriteAllBytes(truncated, good.AsSpan(0, 12).ToArray());
        Cli.AssertOneLineError(Cli.Run("replay", truncated), 12, "truncated");
        string damaged = Cli.TempFile("damaged.rvt");
        byte[] d = (byte[])good.Clone();
        long chunk = TraceEdit.LastEventChunkOffset(good);
        d[chunk + 20] ^= 0xFF;
        File.WriteAllBytes(damaged, d);
        var r = Cli.Run("replay", damaged, "--quiet");
        Cli.AssertOneLineError(r, 9, $"offset {chunk}");
    }

    [Fact]
    public void ARunEndedByItsInstructionLimitIsNotShownAsAPowerOff()
    {
        string trace = Path.Combine(Path.GetTempPath(), $"rv-limit-{Guid.NewGuid():N}.rvt");
        try
        {
            var rec = Cli.Run("record", Cli.Guest("hello"), "--max-instructions", "50000", "-o", trace);
            Assert.True(rec.Code == 4, rec.ToString());
            string last = Cli.Run("dump", trace, "--kind", "shutdown").Stdout.Trim().Split('\n')[^1];
            Assert.EndsWith("50000 shutdown InstructionLimit stopped after the instruction limit", last);
            var export = Cli.Run("export", trace, "--format", "perfetto", "-o", "-");
            Assert.Contains("\"shutdown InstructionLimit\"", export.Stdout);
            Assert.DoesNotContain("PowerOff", export.Stdout);
            // A guest's own shutdown still names its reason.
            Assert.Contains("shutdown PowerOff GuestShutdown", Cli.Run("dump", Path.Combine(Cli.RepoRoot, "traces", "hello.rvt"), "--kind", "shutdown").Stdout);
        }
        finally { File.Delete(trace); }
    }
}
