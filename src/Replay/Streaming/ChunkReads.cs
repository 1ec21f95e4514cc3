using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;
using Replayvisor.Engine.Trace;

namespace Replayvisor.Replay.Streaming;

/// <summary>
/// One chunk read ahead (<see cref="TraceReader.ReadChunk(TraceChunkInfo)"/>: decompressed, checked,
/// decoded) by the process's chunk reader thread (<see cref="ChunkReads"/>). Its result, the events or
/// the exception the read threw, is taken by <see cref="Result"/> where the replay would have read the
/// chunk itself; a read not started by then is done there, on the asking thread.
/// </summary>
internal sealed class ChunkRead
{
    private const int Queued = 0, Running = 1, Done = 2, Dropped = 3;
    private readonly TraceReader _reader;
    private readonly TraceChunkInfo _chunk;
    private readonly object _gate = new();
    private int _state;
    private IReadOnlyList<TraceEvent>? _events;
    private ExceptionDispatchInfo? _error;

    public ChunkRead(TraceReader reader, TraceChunkInfo chunk)
    {
        _reader = reader;
        _chunk = chunk;
    }

    /// <summary>The read has finished (its result is ready: <see cref="Result"/> does not wait).</summary>
    public bool IsCompleted => Volatile.Read(ref _state) == Done;

    /// <summary>Runs the read unless it was started or dropped already (the reader thread's call).</summary>
    public void Run()
    {
        if (Interlocked.CompareExchange(ref _state, Running, Queued) == Queued) Read();
    }

    /// <summary>Not needed any more (a seek moved the replay elsewhere): skipped if not started yet.</summary>
    public void Drop() => Interlocked.CompareExchange(ref _state, Dropped, Queued);

    /// <summary>The chunk's events, or the read's own exception rethrown (a damaged chunk's TraceFormatException, with its offset).</summary>
    public IReadOnlyList<TraceEvent> Result()
    {
        if (Interlocked.CompareExchange(ref _state, Running, Queued) == Queued) Read();
        else if (Volatile.Read(ref _state) != Done)
            lock (_gate)
                while (Volatile.Read(ref _state) != Done) Monitor.Wait(_gate);
        _error?.Throw();
        return _events!;
    }

    private void Read()
    {
        try
        {
            _events = _reader.ReadChunk(_chunk);
        }
        catch (Exception ex)
        {
            // Kept for Result: the reader thread must go on, and the replay meets the error where it reads the chunk.
            _error = ExceptionDispatchInfo.Capture(ex);
        }
        lock (_gate)
        {
            Volatile.Write(ref _state, Done);
            Monitor.PulseAll(_gate);
        }
    }
}

/// <summary>
/// The thread that reads replays' chunks ahead of them (docs/time-travel.md "Streaming"): one
/// long-lived thread for the process, taking reads in the order they were asked for and sleeping when
/// there are none (woken only then, never spinning). Thread-pool work items had the pool's threads
/// spin and yield between items and start several reads at once on a two-core machine, beside the
/// replaying thread (perf: sched_yield, finish_task_switch and the IPIs of their wake-ups).
/// </summary>
internal static class ChunkReads
{
    private static readonly ConcurrentQueue<ChunkRead> Pending = new();
    private static readonly AutoResetEvent Wake = new(false);
    /// <summary>1 while the thread sleeps or is about to (the next read asked for wakes it, once).</summary>
    private static int _sleeping;

    static ChunkReads() => new Thread(Loop) { IsBackground = true, Name = "chunk reader" }.Start();

    /// <summary>Asks the thread to read <paramref name="chunk"/> of <paramref name="reader"/>.</summary>
    public static ChunkRead Start(TraceReader reader, TraceChunkInfo chunk)
    {
        var read = new ChunkRead(reader, chunk);
        Pending.Enqueue(read);
        if (Interlocked.Exchange(ref _sleeping, 0) == 1) Wake.Set();
        return read;
    }

    private static void Loop()
    {
        while (true)
        {
            while (Pending.TryDequeue(out var read)) read.Run();
            Interlocked.Exchange(ref _sleeping, 1);
            // A read queued between the last TryDequeue and the flag would find no sleeper to wake: look again.
            if (!Pending.IsEmpty && Interlocked.Exchange(ref _sleeping, 0) == 1) continue;
            Wake.WaitOne();
        }
    }
}
