namespace Replayvisor.Cli;

/// <summary>The command's exit codes (README.md, "The command line"). Each failure kind has its own.</summary>
public static class ExitCodes
{
    public const int PoweredOff = 0;
    public const int Ok = 0;
    /// <summary>diff: the two runs differ.</summary>
    public const int Differ = 1;
    public const int Usage = 2;
    public const int GuestCrashed = 3;
    public const int InstructionLimit = 4;
    public const int BadKernel = 5;
    public const int FileNotFound = 6;
    public const int Unsupported = 7;
    public const int NotATrace = 8;
    public const int TraceDamaged = 9;
    public const int Diverged = 10;
    public const int TraceNewer = 11;
    public const int TraceTruncated = 12;
    /// <summary>Replay: the trace ends early (killed recorder); every event it holds replayed bit-exactly (same code as a truncated trace).</summary>
    public const int TracePrefixOnly = TraceTruncated;
    public const int GuestRebooted = 13;
    public const int GuestIdle = 14;
    /// <summary>
    /// diff: one run was stopped by its recorder (its instruction limit, or Ctrl-C/SIGTERM) before the other and
    /// agrees with it up to there. Not 12: its trace is complete, nothing is missing or damaged.
    /// </summary>
    public const int DiffAgreesToStop = 15;
    /// <summary>diff: the traces were recorded with settings that make them incomparable (memory, clock, Xen ABI).</summary>
    public const int TracesIncomparable = 20;
    /// <summary>diff: the traces are of unrelated guests.</summary>
    public const int UnrelatedGuests = 21;
    /// <summary>diff: a trace compared with itself.</summary>
    public const int SameTrace = 22;
    /// <summary>diff: the traces were written by different format versions.</summary>
    public const int FormatVersionsDiffer = 23;
    /// <summary>index: the trace cannot hold keyframes (format 1, or an incomplete trace).</summary>
    public const int CannotIndex = 24;
    public const int Interrupted = 130;
    public const int IoError = 74;
    public const int Internal = 70;
}

/// <summary>A failure reported as one line on stderr with its exit code.</summary>
public sealed class CliException(int exitCode, string message) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}
