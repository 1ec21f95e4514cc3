using Replayvisor.Cli.Diff;
using Replayvisor.Engine.Trace;
using Replayvisor.Replay.Diff;

namespace Replayvisor.Cli.Commands;

/// <summary>`replayvisor diff A.rvt B.rvt [--json] [--context N] [--no-pinpoint]`: where two runs part ways (docs/diff.md).</summary>
public static class DiffCommand
{
    public static int Run(string pathA, string pathB, bool json, int context, bool pinpoint, TextWriter output)
    {
        if (context < 0) throw new CliException(ExitCodes.Usage, $"--context {context}: must be 0 or more");
        using var a = TraceFiles.Open(pathA);
        using var b = TraceFiles.Open(pathB);
        var result = Compare(pathA, a, pathB, b, context, pinpoint);
        output.Write(json ? DiffJson.Render(result) : DiffText.Render(result));
        // A run its recorder stopped (instruction limit, Ctrl-C) is complete as far as it goes: a result, like 0 and 1, not an error.
        if (result.AgreeToEarlyEnd && result.EndsEarly is { Stopped: true }) return ExitCodes.DiffAgreesToStop;
        if (result.AgreeToEarlyEnd && result.EndsEarly is { } end)
        {
            // Like `replay` of such a trace: exit 12 says only a prefix could be checked (README's table), never a divergence.
            output.Flush();
            throw new CliException(ExitCodes.TracePrefixOnly,
                $"{end.Trace.Path}: the trace is incomplete ({end.Trace.Reader.IncompleteReason}); the runs agree up to its end at instruction {end.Trace.FinalIcount:N0}");
        }
        return result.Identical ? ExitCodes.Ok : ExitCodes.Differ;
    }

    /// <summary>Checks that the traces can be compared and compares them; incomparable traces become the exit codes of docs/diff.md.</summary>
    public static TraceDiffResult Compare(string pathA, TraceReader a, string pathB, TraceReader b, int context, bool pinpoint)
    {
        try
        {
            Comparability.Check(pathA, a, pathB, b);
            return TraceDiff.Compare(Side(pathA, a), Side(pathB, b), context, pinpoint);
        }
        catch (IncomparableTracesException e)
        {
            throw new CliException(e.Kind switch
            {
                IncomparableKind.SameTrace => ExitCodes.SameTrace,
                IncomparableKind.FormatVersions => ExitCodes.FormatVersionsDiffer,
                IncomparableKind.UnrelatedGuests => ExitCodes.UnrelatedGuests,
                _ => ExitCodes.TracesIncomparable,
            }, e.Message);
        }
    }

    private static DiffSide Side(string path, TraceReader reader)
    {
        try { return new DiffSide(path, reader); }
        catch (TraceFormatException e) { throw TraceFiles.FromFormat(path, e); }
    }
}
