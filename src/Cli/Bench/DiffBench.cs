using System.Diagnostics;
using Replayvisor.Cli.Commands;
using Replayvisor.Engine.Session;
using Replayvisor.Replay.Diff;

namespace Replayvisor.Cli.Bench;

/// <summary>
/// `replayvisor bench --diff A.rvt B.rvt`: the figures of docs/diff.md in one process run, so they
/// compare. The event-level diff (open both traces, read, align, first differing event) twice,
/// cold and warm; then, for two recordings of one image, the pinpoint at the recordings' own
/// checkpoint interval and at 10 and 100 times it (using only the checkpoints such a recording
/// would have taken), with the instructions re-executed to reach the window and inside it.
/// Times are the process's CPU time (a shared machine's wall time mostly measures the other load).
/// </summary>
public static class DiffBench
{
    public static int Run(string pathA, string pathB, TextWriter stdout)
    {
        TraceDiffResult? result = null;
        var times = new List<(double Cpu, double Wall)>();
        for (int round = 0; round < 2; round++) // the first round includes the JIT's work
        {
            var cpu = CpuTime.StartNew();
            var wall = Stopwatch.StartNew();
            using var a = TraceFiles.Open(pathA);
            using var b = TraceFiles.Open(pathB);
            result = DiffCommand.Compare(pathA, a, pathB, b, context: 3, pinpoint: false);
            times.Add((cpu.Seconds, wall.Elapsed.TotalSeconds));
        }
        var r = result!;
        stdout.WriteLine($"traces {Path.GetFileName(pathA)} / {Path.GetFileName(pathB)}: {r.A.FinalIcount:N0} / {r.B.FinalIcount:N0} instructions, {r.A.Raw.Count:N0} / {r.B.Raw.Count:N0} events, {(r.SameImage ? "one guest image" : "two guest images")}");
        string first = r.FirstEvent is { } f ? $"first differing recorded event at {f.Icount:N0}" : r.FirstDifference >= 0 ? "the aligned events differ" : "identical";
        stdout.WriteLine($"event diff: {times[0].Cpu * 1000:F0} ms CPU ({times[0].Wall * 1000:F0} ms wall) cold, {times[1].Cpu * 1000:F0} ms CPU ({times[1].Wall * 1000:F0} ms wall) warm; {first}");
        stdout.WriteLine($"  warm CPU time / the issue's 1 s target: {times[1].Cpu:F3}");
        if (!r.SameImage || r.Identical)
        {
            stdout.WriteLine(r.Identical ? "pinpoint: nothing to pinpoint, the runs are identical" : "pinpoint: only for two recordings of one guest image");
            return ExitCodes.Ok;
        }
        return Pinpoints(pathA, pathB, stdout);
    }

    private static int Pinpoints(string pathA, string pathB, TextWriter stdout)
    {
        using var a = TraceFiles.Open(pathA);
        using var b = TraceFiles.Open(pathB);
        var sideA = new DiffSide(pathA, a);
        var sideB = new DiffSide(pathB, b);
        ulong ia = RunOptions.FromHeader(a.Header).CheckpointInterval, ib = RunOptions.FromHeader(b.Header).CheckpointInterval;
        ulong baseInterval = Math.Max(ia, ib);
        if (ia == 0 || ib == 0 || baseInterval % Math.Min(ia, ib) != 0)
        {
            stdout.WriteLine($"pinpoint: the recordings' checkpoint intervals ({ia:N0}, {ib:N0}) give no common checkpoints to compare intervals with");
            return ExitCodes.Ok;
        }
        stdout.WriteLine("pinpoint per checkpoint interval (both runs; 'reach' replays to the window's start, 'search' runs inside it):");
        stdout.WriteLine($"{"interval",12} {"window start",14} {"width",12} {"passes",6} {"search instr",14} {"/width",7} {"reach instr",14} {"search ms",10} {"reach ms",10} {"instruction",14}");
        // Warm-up (the compiled tier's JIT would otherwise count against the first row), not shown.
        try { Pinpointer.Find(sideA, sideB, new PinpointOptions { CheckpointInterval = baseInterval }); }
        catch (PinpointException) { }
        double? firstSearch = null;
        for (ulong interval = baseInterval; interval <= Math.Min(sideA.FinalIcount, sideB.FinalIcount) && interval <= baseInterval * 100; interval *= 10)
        {
            var cpu = CpuTime.StartNew();
            double reached = 0;
            PinpointResult p;
            try { p = Pinpointer.Find(sideA, sideB, new PinpointOptions { CheckpointInterval = interval, WindowReached = () => reached = cpu.Seconds }); }
            catch (PinpointException e) { stdout.WriteLine($"{interval,12:N0}  {e.Message}"); continue; }
            double search = cpu.Seconds - reached;
            ulong width = p.EndIcount - p.StartIcount;
            firstSearch ??= search;
            stdout.WriteLine($"{interval,12:N0} {p.StartIcount,14:N0} {width,12:N0} {p.Passes,6} {p.WindowInstructions,14:N0} {(double)p.WindowInstructions / width,7:F2} {p.InstructionsExecuted - p.WindowInstructions,14:N0} {search * 1000,10:F1} {reached * 1000,10:F1} {p.Icount,14:N0}  (search {search / firstSearch.Value:F1}x the first row's)");
        }
        return ExitCodes.Ok;
    }

    /// <summary>A stopwatch over the process's CPU time.</summary>
    private sealed class CpuTime
    {
        private readonly TimeSpan _start = Process.GetCurrentProcess().TotalProcessorTime;
        public static CpuTime StartNew() => new();
        public double Seconds => (Process.GetCurrentProcess().TotalProcessorTime - _start).TotalSeconds;
    }
}
