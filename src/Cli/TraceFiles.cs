using Replayvisor.Engine.Trace;

namespace Replayvisor.Cli;

/// <summary>Opens trace files, turning every kind of bad file into its own exit code and one line.</summary>
public static class TraceFiles
{
    public static TraceReader Open(string path)
    {
        FileStream stream = InputFiles.OpenRead(path);
        // A trace is read by seeking (its index is at the end): a pipe (`cat t.rvt |`, `<(...)`) cannot be.
        if (!stream.CanSeek)
        {
            stream.Dispose();
            throw new CliException(ExitCodes.IoError, $"{path}: cannot read a trace from a pipe: give the trace file itself");
        }
        try
        {
            return TraceReader.Open(stream);
        }
        catch (TraceFormatException e)
        {
            stream.Dispose();
            throw FromFormat(path, e);
        }
    }

    public static CliException FromFormat(string path, TraceFormatException e) => new(e.Error switch
    {
        TraceError.NotATrace => ExitCodes.NotATrace,
        TraceError.NewerFormat => ExitCodes.TraceNewer,
        // An empty file is what a recorder killed right after creating it leaves: a truncated trace.
        TraceError.Empty or TraceError.Truncated => ExitCodes.TraceTruncated,
        _ => ExitCodes.TraceDamaged,
    }, $"{path}: {e.Message}");
}
