using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Replayvisor.Cli.Bench;

/// <summary>
/// CPU time of the calling thread, for bench figures on a shared machine: it leaves out other
/// processes, the runtime's background JIT and GC threads, and has nanosecond resolution (the
/// process figure of <see cref="Process.TotalProcessorTime"/> moves in 10 ms clock ticks on Linux).
/// Linux: clock_gettime(CLOCK_THREAD_CPUTIME_ID); elsewhere the process CPU time.
/// </summary>
internal readonly struct ThreadCpuTime
{
    private readonly double _start;

    private ThreadCpuTime(double start) => _start = start;

    public static ThreadCpuTime Start() => new(Now());

    /// <summary>Seconds of CPU time since <see cref="Start"/>.</summary>
    public double Seconds => Now() - _start;

    private const int ClockProcessCpuTimeId = 2; // <linux/time.h> CLOCK_PROCESS_CPUTIME_ID
    private const int ClockThreadCpuTimeId = 3; // <linux/time.h> CLOCK_THREAD_CPUTIME_ID

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Sec;
        public long Nsec;
    }

    [DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out Timespec ts);

    private static bool Linux => OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.Arm64;

    private static double Now()
    {
        if (Linux && ClockGetTime(ClockThreadCpuTimeId, out var ts) == 0)
            return ts.Sec + ts.Nsec / 1e9;
        return Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;
    }

    /// <summary>
    /// CPU time of every thread of the process, in seconds: the running thread plus any helper
    /// thread (a trace writer), and the runtime's JIT and GC threads. Linux:
    /// clock_gettime(CLOCK_PROCESS_CPUTIME_ID), nanoseconds; elsewhere <see cref="Process.TotalProcessorTime"/>.
    /// </summary>
    public static double ProcessNow()
    {
        if (Linux && ClockGetTime(ClockProcessCpuTimeId, out var ts) == 0)
            return ts.Sec + ts.Nsec / 1e9;
        return Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;
    }
}
