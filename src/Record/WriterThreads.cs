using System.Collections.Concurrent;
using System.Runtime.CompilerServices;

namespace Replayvisor.Record;

/// <summary>
/// The threads trace writers run on (<see cref="TraceWriterThread"/>). A thread whose writer has
/// stopped waits for the next writer of the process instead of exiting, so a process that records
/// again and again (the bench, a test run) starts a thread once, not once per recording: starting
/// one cost the recording thread about 0.3 ms (perf, the bench's longrun rounds: Thread.Start waiting,
/// with sched_yield, for the new thread to run), over 1 % of a 25 ms recording. A writer finds an idle
/// thread or starts one; there are never more threads than recordings that ran at the same time.
/// No machine state is here: only idle threads, each running one writer's loop at a time.
/// </summary>
internal static class WriterThreads
{
    private static readonly ConcurrentStack<Worker> Idle = new();
    private static int _started;

    /// <summary>Threads started so far in this process (for tests: a writer after another one's end starts none).</summary>
    internal static int Started => Volatile.Read(ref _started);

    /// <summary>
    /// Runs <paramref name="loop"/> on an idle writer thread, or on a new one when none is idle; once
    /// it returns, the thread is idle again and then calls <paramref name="then"/> (so a writer started
    /// after <paramref name="then"/> finds this thread).
    /// </summary>
    public static void Run(Action loop, Action then)
    {
        if (Idle.TryPop(out var idle))
        {
            idle.Give(loop, then);
            return;
        }
        Interlocked.Increment(ref _started);
        var worker = new Worker();
        worker.Give(loop, then);
        new Thread(worker.Loop) { IsBackground = true, Name = "trace writer" }.Start();
    }

    private sealed class Worker
    {
        private (Action Loop, Action Then)? _job;
        private readonly AutoResetEvent _given = new(false);

        public void Give(Action loop, Action then)
        {
            _job = (loop, then);
            _given.Set();
        }

        public void Loop()
        {
            while (true)
            {
                _given.WaitOne();
                RunJob();
            }
        }

        /// <summary>
        /// The given job, in a frame of its own: once it returns nothing on the waiting thread's stack
        /// refers to the job, so an idle thread keeps no recording's objects alive. With the job's
        /// delegates as locals of <see cref="Loop"/>, they stayed reachable while the thread waited, and
        /// through the writer's open function the recorder's session: the last recording's whole
        /// machine, its guest RAM included, lived on until the process recorded again (WriterThreadsTests).
        /// </summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        private void RunJob()
        {
            var (loop, then) = _job!.Value;
            _job = null;
            try
            {
                loop();
            }
            finally
            {
                Idle.Push(this);
                then();
            }
        }
    }
}
