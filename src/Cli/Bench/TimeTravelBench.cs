using System.Diagnostics;
using Replayvisor.Replay.Stepping;
using Replayvisor.Replay.TimeTravel;

namespace Replayvisor.Cli.Bench;

/// <summary>
/// `replayvisor bench --trace T`: time-travel figures for one trace in one process run, so they
/// compare: replay speed without and with the snapshot ladder, memory per snapshot, reverse-stepi
/// latency at the end of the trace, and goto to spread-out positions from a fresh session.
/// Times are the process's CPU time (a shared machine's wall time mostly measures the other load).
/// </summary>
public static class TimeTravelBench
{
    public static int Run(string path, int steps, TextWriter stdout)
    {
        if (steps < 1) throw new CliException(ExitCodes.Usage, $"--rounds {steps}: must be at least 1");
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
        return ExitCodes.Ok;
    }

    /// <summary>A stopwatch over the process's CPU time.</summary>
    private sealed class Cpu
    {
        private readonly TimeSpan _start = Process.GetCurrentProcess().TotalProcessorTime;
        public static Cpu StartNew() => new();
        public TimeSpan Elapsed => Process.GetCurrentProcess().TotalProcessorTime - _start;
    }
}
