using System.Diagnostics;

namespace Replayvisor.Cli.Bench;

/// <summary>
/// One measured section three ways, in seconds: CPU time of the running thread (steadiest on a
/// shared machine, but blind to work handed to other threads), CPU time of all the process's
/// threads (what the section cost in total: a trace writer thread and the runtime's JIT and GC
/// threads included), and wall time (what a user waits, waits for other threads included).
/// </summary>
internal readonly record struct RunTimes(double Thread, double AllThreads, double Wall)
{
    public static RunTimes Max => new(double.MaxValue, double.MaxValue, double.MaxValue);

    /// <summary>The best (least) of each figure on its own.</summary>
    public RunTimes Min(RunTimes o) => new(Math.Min(Thread, o.Thread), Math.Min(AllThreads, o.AllThreads), Math.Min(Wall, o.Wall));
}

/// <summary>Measures a <see cref="RunTimes"/> from <see cref="Start"/> to <see cref="Elapsed"/>.</summary>
internal readonly struct RunClock
{
    private readonly ThreadCpuTime _thread;
    private readonly double _process;
    private readonly long _wall;

    private RunClock(ThreadCpuTime thread, double process, long wall) => (_thread, _process, _wall) = (thread, process, wall);

    public static RunClock Start() => new(ThreadCpuTime.Start(), ThreadCpuTime.ProcessNow(), Stopwatch.GetTimestamp());

    public RunTimes Elapsed => new(_thread.Seconds, ThreadCpuTime.ProcessNow() - _process, Stopwatch.GetElapsedTime(_wall).TotalSeconds);
}
