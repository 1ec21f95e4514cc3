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
}
