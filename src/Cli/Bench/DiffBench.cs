using System.Diagnostics;
using Replayvisor.Cli.Commands;
using Replayvisor.Engine.Session;
using Replayvisor.Replay.Diff;

namespace Replayvisor.Cli.Bench;

/// <summary>
/// `replayvisor bench --diff A.rvt B.rvt [--json]`: the figures of docs/diff.md in one process
/// run, so they compare. The event-level diff (open both traces, read, align, first differing
/// event) twice, cold and warm; then, for two recordings of one image, the pinpoint at the
/// recordings' own checkpoint interval and at 10 and 100 times it (using only the checkpoints
/// such a recording would have taken), with the instructions re-executed to reach the window and
/// inside it; when the traces hold keyframes, each row is measured starting from them and from
/// instruction 0. Times are the process's CPU time (a shared machine's wall time mostly measures
/// the other load). <see cref="DiffBenchReport"/> prints the result as text or JSON.
/// </summary>
public static class DiffBench
{
    public static int Run(string pathA, string pathB, bool json, TextWriter stdout)
    {
        var result = Measure(pathA, pathB);
        stdout.Write(json ? DiffBenchReport.Json(result) : DiffBenchReport.Text(result));
        return ExitCodes.Ok;
    }

    public static DiffBenchResult Measure(string pathA, string pathB)
    {
        TraceDiffResult? diff = null;
        var times = new List<DiffBenchTime>();
        for (int round = 0; round < 2; round++) // the first round includes the JIT's work
        {
            var cpu = CpuTime.StartNew();
            var wall = Stopwatch.StartNew();
            using var a = TraceFiles.Open(pathA);
            using var b = TraceFiles.Open(pathB);
            diff = DiffCommand.Compare(pathA, a, pathB, b, context: 3, pinpoint: false);
            times.Add(new DiffBenchTime(cpu.Seconds * 1000, wall.Elapsed.TotalMilliseconds));
        }
        var r = diff!;
        var result = new DiffBenchResult
        {
            TraceA = pathA, TraceB = pathB, // as given: the keyframe notes suggest commands on these paths
            InstructionsA = r.A.FinalIcount, InstructionsB = r.B.FinalIcount,
            EventsA = r.A.Raw.Count, EventsB = r.B.Raw.Count,
            KeyframesA = r.A.Reader.Keyframes.Count, KeyframesB = r.B.Reader.Keyframes.Count,
            SameImage = r.SameImage, Identical = r.Identical,
            FirstEventIcount = r.FirstEvent?.Icount,
            Cold = times[0], Warm = times[1],
        };
        // One run ends early and agrees with the other up to there (docs/diff.md "Incomplete traces", "Runs stopped by
        // their recorder"): nothing differs, so there is nothing to pinpoint.
        if (r.AgreeToEarlyEnd && r.EndsEarly is { } end)
        {
            string side = end.IsA ? "A" : "B";
            string agreement = $"the runs agree up to instruction {end.Trace.FinalIcount:N0}, where {side} "
                + (end.Stopped ? $"was stopped {end.Trace.StoppedBy}" : $"ends (an incomplete trace: {end.Trace.Reader.IncompleteReason})");
            return result with { Agreement = agreement, PinpointNote = "nothing to pinpoint: " + agreement };
        }
        if (!r.SameImage || r.Identical)
            return result with { PinpointNote = r.Identical ? "nothing to pinpoint, the runs are identical" : "only for two recordings of one guest image" };
        return Pinpoints(pathA, pathB, result);
    }

    private static DiffBenchResult Pinpoints(string pathA, string pathB, DiffBenchResult result)
    {
        using var a = TraceFiles.Open(pathA);
        using var b = TraceFiles.Open(pathB);
        var sideA = new DiffSide(pathA, a);
        var sideB = new DiffSide(pathB, b);
        ulong ia = RunOptions.FromHeader(a.Header).CheckpointInterval, ib = RunOptions.FromHeader(b.Header).CheckpointInterval;
        ulong baseInterval = Math.Max(ia, ib);
        if (ia == 0 || ib == 0 || baseInterval % Math.Min(ia, ib) != 0)
            return result with { PinpointNote = $"the recordings' checkpoint intervals ({ia:N0}, {ib:N0}) give no common checkpoints to compare intervals with" };
        bool keyframes = result.KeyframesA + result.KeyframesB > 0;
        // Warm-up (the compiled tier's JIT would otherwise count against the first row), not shown.
        try { Pinpointer.Find(sideA, sideB, new PinpointOptions { CheckpointInterval = baseInterval }); }
        catch (PinpointException) { }
        var rows = new List<DiffBenchRow>();
        for (ulong interval = baseInterval; interval <= Math.Min(sideA.FinalIcount, sideB.FinalIcount) && interval <= baseInterval * 100; interval *= 10)
            foreach (bool useKeyframes in keyframes ? new[] { true, false } : new[] { false })
                rows.Add(Row(sideA, sideB, interval, useKeyframes));
        return result with { Pinpoints = rows };
    }

    private static DiffBenchRow Row(DiffSide a, DiffSide b, ulong interval, bool useKeyframes)
    {
        var cpu = CpuTime.StartNew();
        double reached = 0;
        try
        {
            var p = Pinpointer.Find(a, b, new PinpointOptions { CheckpointInterval = interval, UseKeyframes = useKeyframes, WindowReached = () => reached = cpu.Seconds });
            double search = cpu.Seconds - reached;
            return new DiffBenchRow(interval, useKeyframes, p, search * 1000, reached * 1000, null);
        }
        catch (PinpointException e)
        {
            return new DiffBenchRow(interval, useKeyframes, null, 0, 0, e.Message);
        }
    }

    /// <summary>A stopwatch over the process's CPU time.</summary>
    private sealed class CpuTime
    {
        private readonly TimeSpan _start = Process.GetCurrentProcess().TotalProcessorTime;
        public static CpuTime StartNew() => new();
        public double Seconds => (Process.GetCurrentProcess().TotalProcessorTime - _start).TotalSeconds;
    }
}

/// <summary>CPU and wall milliseconds of one event diff.</summary>
public sealed record DiffBenchTime(double CpuMs, double WallMs);

/// <summary>One pinpoint of `bench --diff`: at a checkpoint interval, from keyframes or from 0; <see cref="Error"/> when it found nothing.</summary>
public sealed record DiffBenchRow(ulong Interval, bool Keyframes, PinpointResult? Pinpoint, double SearchMs, double ReachMs, string? Error);

/// <summary>What `bench --diff` measured.</summary>
public sealed record DiffBenchResult
{
    public required string TraceA { get; init; }
    public required string TraceB { get; init; }
    public ulong InstructionsA { get; init; }
    public ulong InstructionsB { get; init; }
    public int EventsA { get; init; }
    public int EventsB { get; init; }
    public int KeyframesA { get; init; }
    public int KeyframesB { get; init; }
    public bool SameImage { get; init; }
    public bool Identical { get; init; }
    /// <summary>Same image: the count of the first recorded event that differs.</summary>
    public ulong? FirstEventIcount { get; init; }
    public required DiffBenchTime Cold { get; init; }
    public required DiffBenchTime Warm { get; init; }
    /// <summary>One run ends early (incomplete, or stopped by its recorder) and agrees with the other up to there: says so.</summary>
    public string? Agreement { get; init; }
    /// <summary>Why there are no pinpoint rows, when there are none.</summary>
    public string? PinpointNote { get; init; }
    public IReadOnlyList<DiffBenchRow> Pinpoints { get; init; } = [];
}
