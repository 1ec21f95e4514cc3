using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Replayvisor.Replay.Stepping;
using Replayvisor.Replay.TimeTravel;

namespace Replayvisor.Cli.Bench;

/// <summary>
/// `replayvisor bench --trace T [--rss-baseline B]`: time-travel figures for one trace in one
/// process run, so they compare: replay speed without and with the snapshot ladder, memory per
/// snapshot, reverse-stepi latency at the end of the trace, goto to spread-out positions from a
/// fresh session with and without the trace's keyframes, and (with a baseline trace) the peak
/// RSS of replaying each trace in a process of its own. Times are the process's CPU time (a
/// shared machine's wall time mostly measures the other load). With --json the same figures are
/// one document (docs/schemas/bench-trace.schema.json).
/// </summary>
public static class TimeTravelBench
{
    public static int Run(string path, int steps, string? rssBaseline, bool json, TextWriter output) =>
        Reporting(path, () => Measure(path, steps, rssBaseline, json, output));

    /// <summary>Damage met while replaying is the trace's exit code and one line (as for `replay`), not an internal error.</summary>
    private static int Reporting(string path, Func<int> bench)
    {
        try { return bench(); }
        catch (Engine.Trace.TraceFormatException e) { throw TraceFiles.FromFormat(path, e); }
        catch (Engine.Boot.BootImageException e) { throw new CliException(ExitCodes.TraceDamaged, $"{path}: the embedded guest image does not load: {e.Message}"); }
    }

    private static int Measure(string path, int steps, string? rssBaseline, bool json, TextWriter output)
    {
        if (steps < 1) throw new CliException(ExitCodes.Usage, $"--rounds {steps}: must be at least 1");
        // With --json, stdout carries one document: the text lines are dropped, the figures collected.
        var stdout = json ? TextWriter.Null : output;
        int keyframeCount;
        ulong end = 0;
        double plain = 0;
        for (int round = 0; round < 2; round++) // the first round warms up the JIT; the second is measured
        {
            using var reader = TraceFiles.Open(path);
            var replayer = new TraceReplayer(reader);
            var sw = Cpu.StartNew();
            var stop = replayer.Step(new StepConstraints());
            plain = sw.Elapsed.TotalSeconds;
            end = replayer.Icount;
            if (stop.Kind != StopKind.EndOfTrace) throw new CliException(ExitCodes.Diverged, $"{path}: the bench replay stopped early: {stop.Kind}");
        }
        using (var info = TraceFiles.Open(path))
        {
            keyframeCount = info.Keyframes.Count;
            stdout.WriteLine($"trace {Path.GetFileName(path)}: {end:N0} instructions, {info.Stats.EventCount:N0} events, {keyframeCount} keyframes");
        }
        stdout.WriteLine($"replay, no ladder:        {plain * 1000,10:F1} ms  {end / plain / 1e6,7:F1} MIPS");
        using var reader2 = TraceFiles.Open(path);
        var session = new TimeTravelSession(reader2, new TimeTravelOptions { UseKeyframes = false });
        var sw2 = Cpu.StartNew();
        session.Step(new StepConstraints());
        double laddered = sw2.Elapsed.TotalSeconds;
        stdout.WriteLine($"replay, snapshot ladder:  {laddered * 1000,10:F1} ms  {end / laddered / 1e6,7:F1} MIPS  ({laddered / plain:F3}x the time; {session.Ladder.Count} snapshots)");
        stdout.WriteLine($"ladder memory:            {session.Ladder.BytesUsed / 1048576.0,10:F1} MiB  {session.Ladder.BytesUsed / Math.Max(1, session.Ladder.Count) / 1024.0:F0} KiB per snapshot (RAM {session.Replayer.Machine.Domain.Memory.Size / 1048576} MiB)");
        var latencies = new List<double>();
        for (int i = 0; i < steps; i++)
        {
            var sw = Cpu.StartNew();
            session.ReverseStepInstruction();
            latencies.Add(sw.Elapsed.TotalMilliseconds);
        }
        double first = latencies[0];
        latencies.Sort();
        stdout.WriteLine($"reverse-stepi at the end: median {latencies[latencies.Count / 2]:F2} ms, first {first:F2} ms, max {latencies[^1]:F2} ms over {steps} steps (now at {session.Icount:N0})");
        var withKeyframes = Gotos(path, end, useKeyframes: true, stdout);
        var withoutKeyframes = Gotos(path, end, useKeyframes: false, stdout);
        JsonObject? rss = null;
        if (rssBaseline != null)
        {
            long small = PeakRssOfReplay(rssBaseline), big = PeakRssOfReplay(path);
            stdout.WriteLine($"peak RSS replaying, each in its own process: {Path.GetFileName(path)} {big / 1048576.0:F1} MiB, " +
                $"{Path.GetFileName(rssBaseline)} {small / 1048576.0:F1} MiB: {(double)big / small:F3}x");
            rss = new JsonObject { ["bytes"] = big, ["baseline"] = Path.GetFileName(rssBaseline), ["baselineBytes"] = small, ["ratio"] = Math.Round((double)big / small, 3) };
        }
        if (json)
            output.WriteLine(new JsonObject
            {
                ["benchmark"] = "trace",
                ["trace"] = Path.GetFileName(path),
                ["instructions"] = end,
                ["replayNoLadder"] = Timing(plain, end),
                ["replayWithLadder"] = Timing(laddered, end),
                ["ladderTimeRatio"] = plain > 0 ? Math.Round(laddered / plain, 3) : null,
                ["snapshots"] = session.Ladder.Count,
                ["ladderBytes"] = session.Ladder.BytesUsed,
                ["memoryMiB"] = session.Replayer.Machine.Domain.Memory.Size / 1048576,
                ["reverseStepi"] = new JsonObject
                {
                    ["steps"] = steps,
                    ["medianMs"] = Math.Round(latencies[latencies.Count / 2], 3),
                    ["firstMs"] = Math.Round(first, 3),
                    ["maxMs"] = Math.Round(latencies[^1], 3),
                    ["endsAt"] = session.Icount,
                },
                ["gotoFromFreshSessionMs"] = new JsonArray(withKeyframes.Select(g => (JsonNode)Math.Round(g, 3)).ToArray()),
                ["keyframes"] = keyframeCount,
                ["gotoWithoutKeyframesMs"] = new JsonArray(withoutKeyframes.Select(g => (JsonNode)Math.Round(g, 3)).ToArray()),
                ["peakRss"] = rss,
            }.ToJsonString(JsonOutput.Options));
        return ExitCodes.Ok;
    }

    /// <summary>CPU milliseconds and MIPS; MIPS is null when the time was too short to measure.</summary>
    private static JsonObject Timing(double seconds, ulong icount) =>
        new() { ["ms"] = Math.Round(seconds * 1000, 3), ["mips"] = seconds > 0 ? Math.Round(icount / seconds / 1e6, 3) : null };

    /// <summary>goto to 1/5..4/5 of the trace, each from a fresh session (the trace opened again); the CPU milliseconds of each.</summary>
    private static List<double> Gotos(string path, ulong end, bool useKeyframes, TextWriter stdout)
    {
        var gotos = new List<double>();
        int loaded = 0, keyframes = 0;
        for (int i = 1; i <= 4; i++)
        {
            using var fresh = TraceFiles.Open(path);
            var sw = Cpu.StartNew();
            var s = new TimeTravelSession(fresh, new TimeTravelOptions { UseKeyframes = useKeyframes });
            var stop = s.Goto(end / 5 * (ulong)i);
            if (stop.Kind != StopKind.Reached) throw new CliException(ExitCodes.Diverged, $"{path}: goto stopped early: {stop.Kind}");
            gotos.Add(sw.Elapsed.TotalMilliseconds);
            loaded += s.KeyframesLoaded;
            keyframes = s.Keyframes.Count;
        }
        string how = useKeyframes ? $"with {keyframes} keyframes ({loaded} restored)" : "without keyframes";
        stdout.WriteLine($"goto from a fresh session {how}: {string.Join(", ", gotos.Select(g => $"{g:F0}"))} ms to 1/5..4/5 of the trace");
        return gotos;
    }

    /// <summary>`bench --trace T --peak-rss`: replays T to its end and prints this process's peak resident set (Linux VmHWM).</summary>
    public static int PrintPeakRss(string path, TextWriter stdout) => Reporting(path, () => PeakRss(path, stdout));

    private static int PeakRss(string path, TextWriter stdout)
    {
        using (var reader = TraceFiles.Open(path))
        {
            var stop = new TraceReplayer(reader).Step(new StepConstraints());
            if (stop.Kind != StopKind.EndOfTrace) throw new CliException(ExitCodes.Diverged, $"{path}: the replay stopped early: {stop.Kind}");
        }
        var gc = GC.GetGCMemoryInfo();
        stdout.WriteLine($"peak-rss-bytes {ReadVmHwm()}");
        stdout.WriteLine($"gc: heap {gc.HeapSizeBytes / 1048576.0:F1} MiB, committed {gc.TotalCommittedBytes / 1048576.0:F1} MiB, live after a full collection {GC.GetTotalMemory(true) / 1048576.0:F1} MiB, promoted {gc.PromotedBytes / 1048576.0:F1} MiB, gen2 collections {GC.CollectionCount(2)}");
        return ExitCodes.Ok;
    }

    private static long ReadVmHwm()
    {
        string? line = null;
        try { line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal)); }
        catch (IOException) { }
        if (line == null) throw new CliException(ExitCodes.Unsupported, "peak RSS needs Linux's /proc/self/status (VmHWM)");
        return long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
    }

    /// <summary>Runs `replayvisor bench --trace T --peak-rss` as a child process and reads its figure.</summary>
    private static long PeakRssOfReplay(string trace)
    {
        string host = Environment.ProcessPath ?? throw new CliException(ExitCodes.Internal, "cannot find this program to start it again");
        var psi = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(host) == "dotnet") psi.ArgumentList.Add(typeof(TimeTravelBench).Assembly.Location);
        foreach (string a in new[] { "bench", "--trace", trace, "--peak-rss" }) psi.ArgumentList.Add(a);
        using var child = Process.Start(psi)!;
        string output = child.StandardOutput.ReadToEnd();
        string error = child.StandardError.ReadToEnd();
        child.WaitForExit();
        var figure = output.Split('\n').FirstOrDefault(l => l.StartsWith("peak-rss-bytes ", StringComparison.Ordinal));
        if (child.ExitCode != 0 || figure == null)
            throw new CliException(child.ExitCode != 0 ? child.ExitCode : ExitCodes.Internal, $"{trace}: the replay for the RSS figure failed: {error.Trim()}");
        return long.Parse(figure["peak-rss-bytes ".Length..].Trim(), CultureInfo.InvariantCulture);
    }

    /// <summary>A stopwatch over the process's CPU time.</summary>
    private sealed class Cpu
    {
        private readonly TimeSpan _start = Process.GetCurrentProcess().TotalProcessorTime;
        public static Cpu StartNew() => new();
        public TimeSpan Elapsed => Process.GetCurrentProcess().TotalProcessorTime - _start;
    }
}
