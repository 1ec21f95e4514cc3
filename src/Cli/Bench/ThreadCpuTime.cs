using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Replayvisor.Cli.Bench;

/// <summary>
/// CPU time of the calling thread, for bench figures on a shared machine: it leaves out other
/// processes, the runtime's background JIT and GC threads, and has nanosecond resolution (the
/// process figure on Linux moves in 10 ms clock ticks). Linux: clock_gettime(CLOCK_THREAD_CPUTIME_ID);
/// elsewhere the process CPU time.
/// </summary>
internal readonly struct ThreadCpuTime
{
    private readonly double _start;

    private ThreadCpuTime(double start) => _start = start;

    public static ThreadCpuTime Start() => new(Now());

    /// <summary>Seconds of CPU time since <see cref="Start"/>.</summary>
    public double Seconds => Now() - _start;

    private const int ClockThreadCpuTimeId = 3; // <linux/time.h> CLOCK_THREAD_CPUTIME_ID

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Sec;
        public long Nsec;
    }

    [DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out Timespec ts);

    private static double Now()
    {
        if (OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.Arm64
            && ClockGetTime(ClockThreadCpuTimeId, out var ts) == 0)
            return ts.Sec + ts.Nsec / 1e9;
        return Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;
    }
}
