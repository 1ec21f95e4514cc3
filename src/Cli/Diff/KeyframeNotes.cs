using Replayvisor.Replay.Diff;

namespace Replayvisor.Cli.Diff;

/// <summary>
/// The line `diff` and `bench --diff` print when a trace's keyframes could not be used to reach
/// the pinpoint window (docs/diff.md "Same guest image", step 2): the result is the same, only
/// slower, and re-indexing the trace with this build makes them usable again.
/// </summary>
public static class KeyframeNotes
{
    public static IEnumerable<string> Lines(PinpointResult p, string pathA, string pathB)
    {
        if (p.KeyframesRefusedA is { } a) yield return Line(pathA, a, p.ReachedFromA);
        if (p.KeyframesRefusedB is { } b) yield return Line(pathB, b, p.ReachedFromB);
    }

    public static string Line(string path, string refused, ulong reachedFrom) =>
        $"note: keyframes of {path} {refused}; reached the window from {(reachedFrom == 0 ? "instruction 0" : $"keyframe {reachedFrom:N0}")}; run `replayvisor index {path}` to rebuild them";
}
