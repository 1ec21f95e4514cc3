using Replayvisor.Engine.Trace;
using Replayvisor.Replay;

namespace Replayvisor.Cli;

/// <summary>Opens trace files, turning every kind of bad file into its own exit code and one line.</summary>
public static class TraceFiles
{
    public static TraceReader Open(string path)
    {
        // A trace is read by seeking (its index is at the end): a pipe (`cat t.rvt |`, `<(...)`) cannot be. A named
        // pipe (mkfifo) is refused before it is opened: opening one blocks until something writes to it, which hung.
        if (FilePaths.Stat(path) is { } st && (st.Mode & SIfmt) == SIfifo) throw FromPipe(path);
        FileStream stream = InputFiles.OpenRead(path);
        if (!stream.CanSeek)
        {
            stream.Dispose();
            throw FromPipe(path);
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

    private const uint SIfmt = 0xF000, SIfifo = 0x1000;

    private static CliException FromPipe(string path) =>
        new(ExitCodes.IoError, $"{path}: cannot read a trace from a pipe: give the trace file itself");

    public static CliException FromFormat(string path, TraceFormatException e) => new(e.Error switch
    {
        TraceError.NotATrace => ExitCodes.NotATrace,
        TraceError.NewerFormat => ExitCodes.TraceNewer,
        // An empty file is what a recorder killed right after creating it leaves: a truncated trace.
        TraceError.Empty or TraceError.Truncated => ExitCodes.TraceTruncated,
        _ => ExitCodes.TraceDamaged,
    }, $"{path}: {e.Message}");
}
