using System.Runtime.InteropServices;

namespace Replayvisor.Cli.Bench;

/// <summary>
/// Involuntary context switches of the calling thread (the kernel took its core away, e.g. for a
/// thread it had just woken): a count that, unlike a time, the machine's load barely moves, and that
/// shows a cost a thread's CPU time hides (the cache refill after each switch). Linux:
/// getrusage(RUSAGE_THREAD).ru_nivcsw; elsewhere 0.
/// </summary>
internal static class ThreadContextSwitches
{
    private const int RusageThread = 1; // <sys/resource.h> RUSAGE_THREAD

    /// <summary>struct rusage on 64-bit Linux: two timevals, then fourteen longs; ru_nivcsw is the last.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct Rusage
    {
        public long UtimeSec, UtimeUsec, StimeSec, StimeUsec;
        public long MaxRss, IxRss, IdRss, IsRss, MinFlt, MajFlt, NSwap, InBlock, OuBlock, MsgSnd, MsgRcv, NSignals, NvCsw, NivCsw;
    }

    [DllImport("libc", EntryPoint = "getrusage")]
    private static extern int GetRusage(int who, out Rusage usage);

    /// <summary>The thread's involuntary switches so far.</summary>
    public static long Involuntary()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture is not (Architecture.X64 or Architecture.Arm64)) return 0;
        return GetRusage(RusageThread, out var u) == 0 ? u.NivCsw : 0;
    }
}
