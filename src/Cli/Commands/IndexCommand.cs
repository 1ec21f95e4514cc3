using System.Runtime.InteropServices;
using Replayvisor.Engine.Trace;
using Replayvisor.Replay;
using Replayvisor.Replay.Keyframes;

namespace Replayvisor.Cli.Commands;

/// <summary>
/// `replayvisor index trace.rvt [--interval N] [-o out.rvt]` (docs/time-travel.md "Keyframes"):
/// writes the trace again with keyframes into a temporary file next to the target, then renames
/// it over the target, so the original stays whole until the indexed copy is complete.
/// </summary>
public static class IndexCommand
{
    /// <summary>Instructions between keyframes: 2^25, about a fifth of a second of replay.</summary>
    public const ulong DefaultInterval = 1 << 25;

    /// <summary>
    /// The closest keyframes may be: 2^18 instructions (docs/time-travel.md "Keyframes"). A keyframe is a whole
    /// machine state: about 75 KB on disk and 5 ms of CPU to write for a 32 MiB guest, and restoring one costs
    /// about as much as replaying a few hundred thousand instructions, which is why the snapshots of a seek or a
    /// pinpoint are no closer than 2^18 either (docs/diff.md "Cost"). Closer keyframes make no seek faster; they
    /// only grow the trace and the time to write it without bound (an interval of 1 wrote 840 MB in 60 s for hello).
    /// </summary>
    public const ulong MinInterval = 1 << 18;

    /// <summary>Refuses an interval closer than <see cref="MinInterval"/> (0 is "no keyframes" only for `record`, which does not ask).</summary>
    public static void CheckInterval(ulong interval, string option)
    {
        if (interval < MinInterval)
            throw new CliException(ExitCodes.Usage,
                $"{option} {interval}: keyframes must be at least {MinInterval:N0} (2^18) instructions apart: closer ones make no seek faster and only grow the trace (docs/time-travel.md \"Keyframes\")");
    }

    public static int Run(string path, ulong interval, string? output, TextWriter stderr)
    {
        CheckInterval(interval, "--interval");
        if (output != null) InputFiles.RefuseStandardOutput(output, "index", "a trace is read back by seeking");
        string target = output ?? path;
        // The indexed trace is renamed over the file itself: a symbolic link keeps pointing at it, and a
        // device (-o /dev/null), pipe or socket is refused, not replaced by a file.
        string file = FilePaths.Canonical(target);
        if (InputFiles.IsSpecialFile(file))
            throw new CliException(ExitCodes.IoError, $"{target}: cannot write: not a regular file (index writes a new trace file and renames it into place)");
        string temp = Path.Combine(Path.GetDirectoryName(file)!, $".{Path.GetFileName(file)}.indexing-{Environment.ProcessId}");
        IndexResult result;
        // Ctrl-C or SIGTERM while the copy is written: the temporary file goes, the target stays as it was, and
        // the signal then ends the process as it would have (exit 130 or 143). Once the rename has begun, the
        // signal is ignored (the index is complete by then).
        int phase = Writing;
        void Interrupted(PosixSignalContext c)
        {
            if (Interlocked.CompareExchange(ref phase, Stopped, Writing) != Writing) { c.Cancel = true; return; }
            DeleteTemp(temp);
            try { stderr.WriteLine($"replayvisor: {target}: index interrupted; the trace is as it was"); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Interrupted);
        using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Interrupted);
        try
        {
            using var reader = TraceFiles.Open(path);
            using var stream = Create(temp, target);
            result = TraceIndexer.Write(reader, stream, interval);
            stream.Flush(flushToDisk: true);
        }
        catch (Exception e)
        {
            DeleteTemp(temp); // whatever went wrong, no half-written file is left behind
            if (e is not (IndexException or TraceFormatException or IOException or UnauthorizedAccessException or CliException)) throw;
            throw e switch
            {
                IndexException { Diverged: true } => new CliException(ExitCodes.Diverged, $"{path}: cannot index: {e.Message}"),
                IndexException => new CliException(ExitCodes.CannotIndex, $"{path}: cannot index: {e.Message}"),
                TraceFormatException f => TraceFiles.FromFormat(path, f),
                CliException c => c,
                _ => new CliException(ExitCodes.IoError, $"{target}: cannot write: {e.Message}"),
            };
        }
        if (Interlocked.CompareExchange(ref phase, Renaming, Writing) != Writing) Thread.Sleep(Timeout.Infinite); // the signal is ending the process
        try
        {
            // The new file takes the place of the old one with its permissions: a private (0600) or read-only trace
            // stays so, rather than getting the umask's mode (0644 made a private trace readable by everyone).
            if (!OperatingSystem.IsWindows() && File.Exists(file)) File.SetUnixFileMode(temp, File.GetUnixFileMode(file));
            File.Move(temp, file, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            DeleteTemp(temp);
            throw new CliException(ExitCodes.IoError, $"{target}: cannot replace: {e.Message}");
        }
        stderr.WriteLine($"index: {target}: {result.Keyframes} keyframes, one every {interval} instructions ({result.KeyframeBytes / 1024} KiB before compression), to instruction {result.FinalIcount}");
        return ExitCodes.Ok;
    }

    private const int Writing = 0, Renaming = 1, Stopped = 2;

    /// <summary>The temporary file beside <paramref name="target"/>; a failure names the target the user asked for.</summary>
    private static FileStream Create(string temp, string target)
    {
        try { return new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None); }
        catch (DirectoryNotFoundException)
        {
            throw new CliException(ExitCodes.IoError, $"{target}: cannot write: its directory does not exist");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliException(ExitCodes.IoError, $"{target}: cannot write (a temporary file beside it: {e.Message})");
        }
    }

    /// <summary>Removes the temporary file; one that never came to be (its directory missing) is no second error.</summary>
    private static void DeleteTemp(string temp)
    {
        try { File.Delete(temp); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
