using Replayvisor.Cli.Export;
using Replayvisor.Engine.Trace;

namespace Replayvisor.Cli.Commands;

/// <summary>`replayvisor export trace.rvt --format perfetto -o run.json`: a timeline for the Perfetto UI (docs/export.md).</summary>
public static class ExportCommand
{
    public static int Run(string path, string format, string output, TextWriter stdout, TextWriter stderr)
    {
        if (format != "perfetto") throw new CliException(ExitCodes.Usage, $"--format {format}: the only format is perfetto");
        bool toStdout = InputFiles.IsStandardOutput(output);
        if (!toStdout) InputFiles.RefuseOverwritingInput(output, path, "trace");
        using var reader = TraceFiles.Open(path);
        string json;
        ulong end;
        try { json = PerfettoTrace.Render(reader, out end); }
        catch (TraceFormatException e) { throw TraceFiles.FromFormat(path, e); }
        // The timeline of an incomplete trace stops where its recorder was stopped: say so (the export also carries it).
        if (!reader.Complete)
            stderr.WriteLine($"export: note: {path} is incomplete ({reader.IncompleteReason}): the timeline ends at instruction {end:N0}, its last recorded event");
        if (toStdout)
        {
            // `-o -`: the JSON document is all that goes to standard output (notes go to stderr); a write
            // error there (a closed pipe, a full disk) is the CLI's I/O error (exit 74).
            try
            {
                stdout.Write(json);
                stdout.Flush();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new CliException(ExitCodes.IoError, $"standard output: cannot write: {e.Message}");
            }
            return ExitCodes.Ok;
        }
        try { File.WriteAllText(output, json); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw InputFiles.CannotWrite(output, e);
        }
        stderr.WriteLine($"export: {output} (open it at ui.perfetto.dev)");
        return ExitCodes.Ok;
    }
}
