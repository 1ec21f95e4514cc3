using System.Text.Json;

namespace Replayvisor.Cli.Tests;

public class ExportCommandTests
{
    private static JsonElement Export(string trace)
    {
        string json = Cli.TempFile("run.json");
        var r = Cli.Run("export", trace, "--format", "perfetto", "-o", json);
        Assert.True(r.Code == 0, r.ToString());
        return JsonDocument.Parse(File.ReadAllText(json)).RootElement.Clone();
    }

    private static void AssertWellFormedAndNested(JsonElement root)
    {
        var events = root.GetProperty("traceEvents").EnumerateArray().ToList();
        Assert.NotEmpty(events);
        foreach (var e in events)
        {
            Assert.False(string.IsNullOrEmpty(e.GetProperty("name").GetString()));
            string ph = e.GetProperty("ph").GetString()!;
            Assert.Contains(ph, new[] { "M", "X", "i" });
            Assert.Equal(1, e.GetProperty("pid").GetInt32());
            e.GetProperty("tid").GetInt32();
            if (ph == "M") continue;
            Assert.True(e.GetProperty("ts").GetDouble() >= 0);
            if (ph == "X") Assert.True(e.GetProperty("dur").GetDouble() > 0);
            if (ph == "i") Assert.Equal("t", e.GetProperty("s").GetString());
        }
        // Slices on one thread nest: each lies wholly inside the enclosing open slice or after it ends.
        foreach (var thread in events.Where(e => e.GetProperty("ph").GetString() == "X").GroupBy(e => e.GetProperty("tid").GetInt32()))
        {
            var open = new Stack<(double Start, double End, string Name)>();
            foreach (var s in thread.OrderBy(e => e.GetProperty("ts").GetDouble()).ThenByDescending(e => e.GetProperty("dur").GetDouble()))
            {
                double start = s.GetProperty("ts").GetDouble(), end = start + s.GetProperty("dur").GetDouble();
                while (open.Count > 0 && open.Peek().End <= start) open.Pop();
                if (open.Count > 0)
                    Assert.True(end <= open.Peek().End, $"{s.GetProperty("name")} [{start}, {end}) overlaps {open.Peek().Name} ending at {open.Peek().End}");
                open.Push((start, end, s.GetProperty("name").GetString()!));
            }
        }
    }

    /// <summary>`-o -` is standard output, holding the JSON document alone; before, it wrote a file named "-".</summary>
    [Fact]
    public void DashAsTheOutputIsStandardOutputAndHoldsOnlyTheDocument()
    {
        string trace = Path.Combine(Cli.RepoRoot, "traces", "multicall.rvt");
        string dir = Path.GetDirectoryName(Cli.TempFile("x"))!;
        var r = Cli.Shell($"cd '{dir}' && dotnet \"$RV\" export '{trace}' -o -");
        Assert.True(r.Code == 0, r.ToString());
        Assert.False(File.Exists(Path.Combine(dir, "-")), "no file named '-'");
        Assert.Equal("", r.Stderr);
        string file = Cli.TempFile("run.json");
        Assert.Equal(0, Cli.Run("export", trace, "-o", file).Code);
        Assert.Equal(File.ReadAllText(file), r.Stdout);
        AssertWellFormedAndNested(JsonDocument.Parse(r.Stdout).RootElement);
        // A file called '-' is still `-o ./-`.
        var f = Cli.Shell($"cd '{dir}' && dotnet \"$RV\" export '{trace}' -o ./-");
        Assert.True(f.Code == 0, f.ToString());
        Assert.Equal("", f.Stdout);
        Assert.Equal(File.ReadAllText(file), File.ReadAllText(Path.Combine(dir, "-")));
        // Standard output that cannot be written is the I/O error, in one line.
        Cli.AssertOneLineError(Cli.Shell($"dotnet \"$RV\" export '{trace}' -o - >&-"), 74, "standard output: cannot write");
        Cli.AssertOneLineError(Cli.Shell($"dotnet \"$RV\" export '{trace}' -o - > /dev/full"), 74, "standard output: cannot write: No space left on device");
    }

    [Fact]
    public void AMulticallTraceBecomesNestedSlicesWithConsoleAndCheckpoints()
    {
        var root = Export(Path.Combine(Cli.RepoRoot, "traces", "multicall.rvt"));
        AssertWellFormedAndNested(root);
        var events = root.GetProperty("traceEvents").EnumerateArray().ToList();
        var multicall = events.First(e => e.GetProperty("name").GetString() == "multicall" && e.GetProperty("ph").GetString() == "X");
        double start = multicall.GetProperty("ts").GetDouble(), end = start + multicall.GetProperty("dur").GetDouble();
        var entries = events.Where(e => e.TryGetProperty("cat", out var cat) && cat.GetString() == "multicall entry"
            && e.GetProperty("ts").GetDouble() >= start && e.GetProperty("ts").GetDouble() < end).ToList();
        Assert.True(entries.Count >= 2, "the multicall's entries are slices inside it");
        Assert.Contains(events, e => e.GetProperty("ph").GetString() == "i" && e.GetProperty("tid").GetInt32() == 3
            && e.GetProperty("name").GetString() == "ALL PASS multicall");
        Assert.Contains(events, e => e.GetProperty("name").GetString() == "checkpoint" && e.GetProperty("args").GetProperty("state_hash").GetString()!.Length == 32);
        Assert.Contains(events, e => e.GetProperty("ph").GetString() == "M" && e.GetProperty("args").GetProperty("name").GetString()!.Contains("multicall.elf"));
    }

    [Fact]
    public void ASchedulingGuestShowsRunningAndBlockedPeriodsAndUpcalls()
    {
        var root = Export(Path.Combine(Cli.RepoRoot, "traces", "events.rvt")); // the events guest blocks in sched_op until an event arrives
        AssertWellFormedAndNested(root);
        var events = root.GetProperty("traceEvents").EnumerateArray().ToList();
        Assert.Contains(events, e => e.GetProperty("name").GetString() == "running" && e.GetProperty("ph").GetString() == "X");
        Assert.Contains(events, e => e.GetProperty("name").GetString() == "blocked" && e.GetProperty("ph").GetString() == "i");
        Assert.Contains(events, e => e.GetProperty("name").GetString() == "upcall");
        Assert.Contains(events, e => e.GetProperty("name").GetString() == "sched_op" && e.GetProperty("ph").GetString() == "X");
    }

    [Fact]
    public void AnIretNamesTheFunctionThatJumpsToItsStub()
    {
        // guests/lib/entry.S: trap_return jumps to hypercall_page + 23 * 32, so every iret's site is the stub.
        var events = Export(Path.Combine(Cli.RepoRoot, "traces", "traps-pae.rvt")).GetProperty("traceEvents").EnumerateArray()
            .Where(e => e.TryGetProperty("cat", out var cat) && cat.GetString() == "hypercall").ToList();
        var irets = events.Where(e => e.GetProperty("name").GetString() == "iret").ToList();
        Assert.NotEmpty(irets);
        Assert.All(irets, e =>
        {
            Assert.Contains("<hypercall_page+0x2e", e.GetProperty("args").GetProperty("from").GetString());
            Assert.Equal("trap_return", e.GetProperty("args").GetProperty("jumped_from").GetString());
        });
        // Called hypercalls keep their call site only.
        var others = events.Where(e => e.GetProperty("name").GetString() != "iret").ToList();
        Assert.NotEmpty(others);
        Assert.All(others, e => Assert.False(e.GetProperty("args").TryGetProperty("jumped_from", out _)));
    }

    [Fact]
    public void EachVcpuHasItsOwnHypercallAndRunStateThreads()
    {
        // guests/smp: vCPU 0 blocks in sched_op block and takes IPIs as upcalls; the secondaries poll with
        // events masked (woken without an upcall) and finally take themselves down with VCPUOP_down.
        string trace = Cli.TempFile("smp.rvt");
        var rec = Cli.Run("record", Cli.Guest("smp-pae"), "-o", trace, "--vcpus", "3");
        Assert.True(rec.Code == 0, rec.ToString());
        var root = Export(trace);
        AssertWellFormedAndNested(root);
        var events = root.GetProperty("traceEvents").EnumerateArray().ToList();
        var threads = events.Where(e => e.GetProperty("ph").GetString() == "M" && e.GetProperty("name").GetString() == "thread_name")
            .ToDictionary(e => e.GetProperty("tid").GetInt32(), e => e.GetProperty("args").GetProperty("name").GetString());
        var dump = Cli.Run("dump", trace, "--kind", "hypercall", "--json");
        Assert.True(dump.Code == 0, dump.ToString());
        var hypercalls = dump.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone())
            .Select(h => (Icount: h.GetProperty("icount").GetUInt64(), Name: h.GetProperty("name").GetString(),
                Vcpu: h.TryGetProperty("vcpu", out var v) ? v.GetInt32() : 0, Cmd: h.GetProperty("args")[0].GetUInt32())).ToList();
        static ulong Icount(JsonElement e) => (ulong)Math.Round(e.GetProperty("ts").GetDouble() * 1000);
        for (int vcpu = 0; vcpu < 3; vcpu++)
        {
            int tid = vcpu == 0 ? 1 : 100 + vcpu, state = vcpu == 0 ? 5 : 200 + vcpu;
            Assert.Equal($"vcpu{vcpu} hypercalls", threads[tid]);
            Assert.Equal($"vcpu{vcpu} running / blocked", threads[state]);
            // Every hypercall slice lies on the thread of the vCPU that made it.
            var mine = hypercalls.Where(h => h.Vcpu == vcpu).Select(h => (h.Icount, h.Name)).ToList();
            var slices = events.Where(e => e.TryGetProperty("cat", out var c) && c.GetString() == "hypercall" && e.GetProperty("tid").GetInt32() == tid)
                .Select(e => (Icount(e), e.GetProperty("name").GetString())).ToList();
            Assert.NotEmpty(mine);
            Assert.Equal(mine, slices);
            // A vCPU is blocked only where it itself blocked (sched_op block or poll).
            var blocks = hypercalls.Where(h => h.Vcpu == vcpu && h.Name == "sched_op" && h.Cmd is 1 or 3).Select(h => h.Icount).ToHashSet();
            var blocked = events.Where(e => e.GetProperty("tid").GetInt32() == state && e.GetProperty("name").GetString() == "blocked").Select(Icount).ToList();
            Assert.NotEmpty(blocked);
            Assert.All(blocked, at => Assert.Contains(at, blocks));
        }
        // The secondaries take themselves down: their running ends there.
        foreach (int state in new[] { 201, 202 })
            Assert.Contains(events, e => e.GetProperty("tid").GetInt32() == state && e.GetProperty("name").GetString() == "down");
    }

    [Fact]
    public void BadExportRequestsGetALine()
    {
        Cli.AssertOneLineError(Cli.Run("export", Path.Combine(Cli.RepoRoot, "traces", "multicall.rvt"), "--format", "svg", "-o", Cli.TempFile("x.json")), 2, "perfetto");
        Cli.AssertOneLineError(Cli.Run("export", "/no/such.rvt", "-o", Cli.TempFile("x.json")), 6, "no such file");
    }
}
