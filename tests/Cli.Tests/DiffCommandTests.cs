using System.Text.Json;

namespace Replayvisor.Cli.Tests;

public class DiffCommandTests
{
    private static readonly Lazy<(string A, string B)> Variants = new(() =>
    {
        string a = Cli.TempFile("variant-a.rvt"), b = Cli.TempFile("variant-b.rvt");
        Assert.Equal(0, Cli.Run("record", Cli.Guest("variant-a"), "-o", a).Code);
        Assert.Equal(0, Cli.Run("record", Cli.Guest("variant-b"), "-o", b).Code);
        return (a, b);
    });

    [Fact]
    public void TwoBuildsDifferAndTheDiffNamesTheFunction()
    {
        var r = Cli.Run("diff", Variants.Value.A, Variants.Value.B);
        Assert.True(r.Code == 1, r.ToString());
        Assert.Contains("@@ -", r.Stdout);
        Assert.Matches(@"\n\+ +\d+  report_progress: hypercall xen_version\(cmd=1, .*first divergence", r.Stdout);
        Assert.Contains("first divergence: B hypercall xen_version(cmd=1", r.Stdout);
        Assert.Contains("in report_progress", r.Stdout);
        Assert.Equal("", r.Stderr);
    }

    [Fact]
    public void TwoHostClockRecordingsDifferInTheirInputsAtInstructionZeroAndTheReportSaysSo()
    {
        string a = Cli.TempFile("host-a.rvt"), b = Cli.TempFile("host-b.rvt");
        Assert.Equal(0, Cli.Run("record", Cli.Guest("hello"), "-o", a, "--clock", "host").Code);
        Assert.Equal(0, Cli.Run("record", Cli.Guest("hello"), "-o", b, "--clock", "host").Code);
        var r = Cli.Run("diff", a, b);
        Assert.True(r.Code == 1, r.ToString());
        // The first differing recorded event reads as `dump` prints it, not as a C# record.
        Assert.Matches(@"\n  A: 0 time Wallclock\w+ \d+\n  B: 0 time Wallclock\w+ \d+\n", r.Stdout);
        Assert.DoesNotContain("TimeEvent {", r.Stdout);
        // Each run starts at the host's time: the states differ from instruction 0 because of that, not the command line.
        Assert.Contains("differ from their first instruction: their inputs at instruction 0 differ (time Wallclock", r.Stdout);
        Assert.Contains("a host-clock recording starts at the host's time", r.Stdout);
        Assert.DoesNotContain("command lines", r.Stdout);
    }

    [Fact]
    public void TheJsonOutputFollowsTheDocumentedSchema()
    {
        var r = Cli.Run("diff", Variants.Value.A, Variants.Value.B, "--json", "--context", "1");
        Assert.Equal(1, r.Code);
        using var doc = JsonDocument.Parse(r.Stdout);
        var root = doc.RootElement;
        Assert.Equal(1, root.GetProperty("schema").GetInt32());
        Assert.Equal("different", root.GetProperty("result").GetString());
        Assert.False(root.GetProperty("sameImage").GetBoolean());
        Assert.Equal("variant-a.elf", root.GetProperty("a").GetProperty("image").GetString());
        var first = root.GetProperty("firstDivergence");
        Assert.Equal("added", first.GetProperty("op").GetString());
        Assert.Equal("report_progress", first.GetProperty("b").GetProperty("function").GetString());
        Assert.Equal("hypercall", first.GetProperty("b").GetProperty("kind").GetString());
        var hunk = root.GetProperty("hunks")[0];
        Assert.Equal(3, hunk.GetProperty("lines").GetArrayLength()); // one change with one line of context each side
        Assert.Contains(root.GetProperty("summary").GetProperty("byHypercall").EnumerateArray(),
            c => c.GetProperty("name").GetString() == "xen_version" && c.GetProperty("a").GetInt32() == 1 && c.GetProperty("b").GetInt32() == 2);
    }

    [Fact]
    public void TwoRecordingsOfOneRunAreIdentical()
    {
        string c = Cli.TempFile("variant-a-again.rvt");
        Assert.Equal(0, Cli.Run("record", Cli.Guest("variant-a"), "-o", c, "--checkpoint-interval", "30000", "--hypercall-data").Code);
        var r = Cli.Run("diff", Variants.Value.A, c);
        Assert.True(r.Code == 0, r.ToString());
        Assert.Contains("identical", r.Stdout);
    }

    [Fact]
    public void TracesThatCannotBeComparedGetALineAndTheirOwnExitCode()
    {
        var (a, b) = Variants.Value;
        Cli.AssertOneLineError(Cli.Run("diff", a, a), 22, "compared with itself");
        Cli.AssertOneLineError(Cli.Run("diff", a, Path.Combine(Cli.RepoRoot, "traces", "multicall.rvt")), 20, "memory size");
        string hello = Cli.TempFile("hello.rvt"), sched = Cli.TempFile("multicall.rvt");
        Assert.Equal(0, Cli.Run("record", Cli.Guest("hello"), "-o", hello).Code);
        Assert.Equal(0, Cli.Run("record", Cli.Guest("multicall"), "-o", sched).Code);
        Cli.AssertOneLineError(Cli.Run("diff", hello, sched), 21, "unrelated guests");
        string mem = Cli.TempFile("variant-a-64.rvt");
        Assert.Equal(0, Cli.Run("record", Cli.Guest("variant-a"), "-o", mem, "--memory", "64").Code);
        Cli.AssertOneLineError(Cli.Run("diff", a, mem), 20, "memory size (MiB) (32 and 64)");
        string two = Cli.TempFile("variant-a-2vcpus.rvt");
        Assert.Equal(0, Cli.Run("record", Cli.Guest("variant-a"), "-o", two, "--vcpus", "2").Code);
        Cli.AssertOneLineError(Cli.Run("diff", a, two), 20, "number of vCPUs (1 and 2)");
        string truncated = Cli.TempFile("truncated.rvt");
        File.WriteAllBytes(truncated, File.ReadAllBytes(b).AsSpan(0, 12).ToArray());
        Cli.AssertOneLineError(Cli.Run("diff", a, truncated), 12, "truncated");
        Cli.AssertOneLineError(Cli.Run("diff", a, "/no/such.rvt"), 6, "no such file");
        Cli.AssertOneLineError(Cli.Run("diff", Path.Combine(Cli.RepoRoot, "traces", "v1", "sched-chaos.rvt"),
            Path.Combine(Cli.RepoRoot, "traces", "v2", "sched-chaos.rvt")), 23, "different format versions (1 and 2)");
        Cli.AssertOneLineError(Cli.Run("diff", a, b, "--context", "-1"), 2, "--context");
    }

    /// <summary>sched recorded whole, and the same run stopped at its instruction limits of 30 and 20 million.</summary>
    private static readonly Lazy<(string Whole, string At30M, string At20M)> Limited = new(() =>
    {
        string whole = Cli.TempFile("sched-whole.rvt"), at30 = Cli.TempFile("sched-30m.rvt"), at20 = Cli.TempFile("sched-20m.rvt");
        Assert.Equal(0, Cli.Run("record", Cli.Guest("sched"), "-o", whole).Code);
        Assert.Equal(4, Cli.Run("record", Cli.Guest("sched"), "-o", at30, "--max-instructions", "30000000").Code);
        Assert.Equal(4, Cli.Run("record", Cli.Guest("sched"), "-o", at20, "--max-instructions", "20000000").Code);
        return (whole, at30, at20);
    });

    [Fact]
    public void ARunStoppedAtItsInstructionLimitAgreesWithTheWholeRunUpToThereAndExits15()
    {
        var (whole, at30, at20) = Limited.Value;
        // Not a divergence (exit 1) and not an incomplete trace (12): the recorder stopped that run, which simply went on in the other.
        var r = Cli.Run("diff", whole, at30);
        Assert.True(r.Code == 15, r.ToString());
        Assert.Equal("", r.Stderr);
        Assert.Contains($"the runs agree up to instruction 30,000,000, where B ({at30}) was stopped at its instruction limit; A goes on to instruction ", r.Stdout);
        Assert.Matches(@"\nB's (\d+) events are A's first \1; A's [1-9]\d* later events are not compared\n", r.Stdout);
        Assert.DoesNotContain("divergence", r.Stdout);
        Assert.DoesNotContain("pinpoint", r.Stdout);
        Assert.DoesNotContain("@@", r.Stdout);
        // Either way round.
        var ba = Cli.Run("diff", at30, whole);
        Assert.True(ba.Code == 15, ba.ToString());
        Assert.Contains($"where A ({at30}) was stopped at its instruction limit; B goes on", ba.Stdout);
        // Two limits: the lower one ends early, the other run goes on to its own limit.
        var two = Cli.Run("diff", at30, at20);
        Assert.True(two.Code == 15, two.ToString());
        Assert.Contains($"the runs agree up to instruction 20,000,000, where B ({at20}) was stopped at its instruction limit; A goes on to instruction 30,000,000 (InstructionLimit)", two.Stdout);

        foreach (var (args, side) in new[] { (new[] { whole, at30 }, "b"), (new[] { at30, whole }, "a") })
        {
            var j = Cli.Run(["diff", .. args, "--json"]);
            Assert.True(j.Code == 15, j.ToString());
            JsonSchemaCheck.AssertValid("diff.schema.json", j.Stdout);
            var root = JsonDocument.Parse(j.Stdout).RootElement;
            Assert.Equal("stopped", root.GetProperty("result").GetString());
            var end = root.GetProperty("endsEarly");
            Assert.Equal(side, end.GetProperty("side").GetString());
            Assert.Equal("stopped", end.GetProperty("kind").GetString());
            Assert.Equal("stopped at its instruction limit", end.GetProperty("reason").GetString());
            Assert.Equal(30_000_000UL, end.GetProperty("icount").GetUInt64());
            Assert.True(end.GetProperty("notCompared").GetInt32() > 0);
            Assert.Equal(JsonValueKind.Null, root.GetProperty("firstDivergence").ValueKind);
            Assert.Equal(0, root.GetProperty("hunks").GetArrayLength());
            Assert.False(root.TryGetProperty("pinpoint", out _), "nothing differs, so nothing is pinpointed");
        }
    }

    [Fact]
    public void ADifferenceBeforeTheInstructionLimitIsStillADivergenceWithItsPinpoint()
    {
        // Other chaos seeds delay sched's timer differently: the runs part well before the limit.
        string whole = Cli.TempFile("chaos1.rvt"), limited = Cli.TempFile("chaos2-30m.rvt");
        Assert.Equal(0, Cli.Run("record", Cli.Guest("sched"), "-o", whole, "--chaos", "1").Code);
        Assert.Equal(4, Cli.Run("record", Cli.Guest("sched"), "-o", limited, "--chaos", "2", "--max-instructions", "30000000").Code);
        foreach (var (args, sn, on) in new[] { (new[] { whole, limited }, "B", "A"), (new[] { limited, whole }, "A", "B") })
        {
            var r = Cli.Run(["diff", .. args]);
            Assert.True(r.Code == 1, r.ToString());
            Assert.Contains("<== first divergence", r.Stdout);
            Assert.Contains("first instruction with a different result: instruction ", r.Stdout);
            Assert.Contains($"note: {sn} ({limited}) was stopped at its instruction limit, instruction 30,000,000; {on}'s ", r.Stdout);
            Assert.DoesNotContain("the runs agree", r.Stdout);
            // The limit's own closing event is not one of the run's events.
            Assert.DoesNotContain("InstructionLimit stopped after the instruction limit", r.Stdout[r.Stdout.IndexOf("@@", StringComparison.Ordinal)..]);
            var j = Cli.Run(["diff", .. args, "--json"]);
            Assert.True(j.Code == 1, j.ToString());
            JsonSchemaCheck.AssertValid("diff.schema.json", j.Stdout);
            var root = JsonDocument.Parse(j.Stdout).RootElement;
            Assert.Equal("different", root.GetProperty("result").GetString());
            Assert.Equal("stopped", root.GetProperty("endsEarly").GetProperty("kind").GetString());
            Assert.True(root.GetProperty("pinpoint").GetProperty("icount").GetUInt64() < 30_000_000UL);
        }
    }
}
