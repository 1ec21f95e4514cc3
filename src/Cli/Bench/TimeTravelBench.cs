using System.Diagnostics;
using System.Text.Json.Nodes;
using Replayvisor.Replay.Stepping;
using Replayvisor.Replay.TimeTravel;

namespace Replayvisor.Cli.Bench;

/// <summary>
/// `replayvisor bench --trace T`: time-travel figures for one trace in one process run, so they
/// compare: replay speed without and with the snapshot ladder, memory per snapshot, reverse-stepi
/// latency at the end of the trace, and goto to spread-out positions from a fresh session.
/// Times are the process's CPU time (a shared machine's wall time mostly measures the other load).
/// With --json the same figures are one document (docs/schemas/bench-trace.schema.json).
/// </summary>
public static class TimeTravelBench
{
    public static int Run(string path, int steps, bool json, TextWriter output)
    {
        if (steps < 1) throw new CliException(ExitCodes.Usage, $"--rounds {steps}: must be at least 1");
        // With --json, stdout carries one document: the text lines are dropped, the figures collected.
        var stdout = json ? TextWriter.Null : output;
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
        stdout.WriteLine($"trace {Path.GetFileName(path)}: {end:N0} instructions");
        stdout.WriteLine($"replay, no ladder:        {plain * 1000,10:F1} ms  {end / plain / 1e6,7:F1} MIPS");
        using var reader2 = TraceFiles.Open(path);
        var session = new TimeTravelSession(reader2);
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
        var gotos = new List<double>();
        for (int i = 1; i <= 4; i++)
        {
            using var fresh = TraceFiles.Open(path);
            var sw = Cpu.StartNew();
            var s = new TimeTravelSession(fresh);
            s.Goto(end / 5 * (ulong)i);
            gotos.Add(sw.Elapsed.TotalMilliseconds);
        }
        stdout.WriteLine($"goto from a fresh session (no keyframes): {string.Join(", ", gotos.Select(g => $"{g:F0}"))} ms to 1/5..4/5 of the trace");
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
                ["gotoFromFreshSessionMs"] = new JsonArray(gotos.Select(g => (JsonNode)Math.Round(g, 3)).ToArray()),
            }.ToJsonString(JsonOutput.Options));
        return ExitCodes.Ok;
    }

    /// <summary>CPU milliseconds and MIPS; MIPS is null when the time was too short to measure.</summary>
    private static JsonObject Timing(double seconds, ulong icount) =>
        new() { ["ms"] = Math.Round(seconds * 1000, 3), ["mips"] = seconds > 0 ? Math.Round(icount / seconds / 1e6, 3) : null };

    /// <summary>A stopwatch over the process's CPU time.</summary>
    private sealed class Cpu
    {
        private readonly TimeSpan _start = Process.GetCurrentProcess().TotalProcessorTime;
        public static Cpu StartNew() => new();
        public TimeSpan Elapsed => Process.GetCurrentProcess().TotalProcessorTime - _start;
    }
}
