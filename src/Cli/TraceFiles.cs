using Replayvisor.Engine.Trace;

namespace Replayvisor.Cli;

/// <summary>Opens trace files, turning every kind of bad file into its own exit code and one line.</summary>
public static class TraceFiles
{
    public static TraceReader Open(string path)
    {
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (FileNotFoundException) { throw new CliException(ExitCodes.FileNotFound, $"{path}: no such file"); }
        catch (DirectoryNotFoundException) { throw new CliException(ExitCodes.FileNotFound, $"{path}: no such file"); }
        catch (UnauthorizedAccessException) { throw new CliException(ExitCodes.IoError, $"{path}: permission denied"); }
        catch (IOException e) { throw new CliException(ExitCodes.IoError, $"{path}: {e.Message}"); }
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
