using System.Diagnostics;

namespace Replayvisor.Cli.Bench;

/// <summary>
/// One measured section three ways, in seconds: CPU time of the running thread (steadiest on a
/// shared machine, but blind to work handed to other threads), CPU time of all the process's
/// threads (what the section cost in total: a trace writer thread and the runtime's JIT and GC
/// threads included), and wall time (what a user waits, waits for other threads included); and the
/// running thread's involuntary context switches (<see cref="ThreadContextSwitches"/>).
/// </summary>
internal readonly record struct RunTimes(double Thread, double AllThreads, double Wall, long Switches)
{
    public static RunTimes Max => new(double.MaxValue, double.MaxValue, double.MaxValue, long.MaxValue);

    /// <summary>The best (least) of each figure on its own.</summary>
    public RunTimes Min(RunTimes o) =>
        new(Math.Min(Thread, o.Thread), Math.Min(AllThreads, o.AllThreads), Math.Min(Wall, o.Wall), Math.Min(Switches, o.Switches));
}

/// <summary>Measures a <see cref="RunTimes"/> from <see cref="Start"/> to <see cref="Elapsed"/>.</summary>
internal readonly struct RunClock
{
    private readonly ThreadCpuTime _thread;
    private readonly double _process;
    private readonly long _wall;
    private readonly long _switches;

    private RunClock(ThreadCpuTime thread, double process, long wall, long switches) =>
        (_thread, _process, _wall, _switches) = (thread, process, wall, switches);

    public static RunClock Start() =>
        new(ThreadCpuTime.Start(), ThreadCpuTime.ProcessNow(), Stopwatch.GetTimestamp(), ThreadContextSwitches.Involuntary());

    public RunTimes Elapsed => new(_thread.Seconds, ThreadCpuTime.ProcessNow() - _process, Stopwatch.GetElapsedTime(_wall).TotalSeconds,
        ThreadContextSwitches.Involuntary() - _switches);
}
