using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using Replayvisor.Engine.Session;
using Replayvisor.Engine.Trace;

namespace Replayvisor.Record;

/// <summary>
/// Runs a <see cref="TraceWriter"/> on a thread of its own, so the recording thread only copies
/// each event's values into a batch (docs/record-replay.md "The trace writer thread"). The writer
/// thread makes exactly the calls the recording thread would have made, in the same order, with
/// flushes at the same points, so the trace's bytes are those of a writer on the recording thread.
/// <list type="bullet">
/// <item>A bounded pipeline: at most <see cref="MaxBatches"/> batches exist; when all are
/// queued the recording thread waits for the writer (memory stays bounded however far it falls behind).
/// They are filled in turn, all of them, before any is filled again (<see cref="HandOver"/>).</item>
/// <item><see cref="Flush"/> and <see cref="Complete"/> return once the writer has written
/// everything before them and flushed the stream: a flush still means the bytes reached the stream.</item>
/// <item>An error on the writer thread (a full disk) is rethrown, as the same exception, on the
/// recording thread at its next append, flush, complete or dispose; nothing is written after it.</item>
/// <item><see cref="Dispose"/> without <see cref="Complete"/> writes every event appended so far
/// (the trace stays readable up to them, as <see cref="TraceWriter.Dispose"/> leaves it).</item>
/// </list>
/// Append, Flush, Complete and Dispose are called from one thread (the recording thread).
/// </summary>
public sealed class TraceWriterThread : ITraceSink
{
    /// <summary>
    /// Batches in existence at most: one being filled, the others queued, being written or written
    /// (2 MB of entries). Each is filled again only after all the others (<see cref="HandOver"/>).
    /// </summary>
    public const int MaxBatches = 32;

    /// <summary>The writer; set on the writer thread when it opens it (<see cref="TraceWriterThread(Func{TraceWriter})"/>), null if that failed.</summary>
    private TraceWriter? _writer;
    private readonly Func<TraceWriter>? _open;
    /// <summary>1 when the writer thread opens the writer (its first completed request), else 0.</summary>
    private readonly int _opens;
    /// <summary>Set by the writer thread as its last act for this writer, once its thread is free for the next one (<see cref="WriterThreads"/>).</summary>
    /// <remarks>Not disposed: the writer thread may still be inside Set when <see cref="Dispose"/> returns from its wait; a ManualResetEventSlim whose WaitHandle is never asked for holds no OS resource.</remarks>
    private readonly ManualResetEventSlim _stopped = new(false);
    // One producer (the recording thread), one consumer (the writer): lock-free queues, and events
    // that block at once when there is nothing to take (the writer's with a timeout: WritersWait). No
    // lock is held across a thread switch and nothing spins, so a preempted thread never makes the
    // other burn a core on a busy machine.
    private readonly ConcurrentQueue<EventBatch> _queued = new();
    private readonly ConcurrentQueue<EventBatch> _free = new();
    private readonly AutoResetEvent _batchQueued = new(false), _batchFreed = new(false), _endDone = new(false);
    private int _endsAsked, _endsDone;
    /// <summary>Every batch this writer has used, so also how many exist (given back to <see cref="Spare"/> once the writer thread is done with them).</summary>
    private readonly List<EventBatch> _all = new(MaxBatches);
    private volatile ExceptionDispatchInfo? _failure;
    private bool _failureReported, _completed, _disposed;
    /// <summary><see cref="EventCount"/> at the last <see cref="Flush"/>.</summary>
    private long _flushedCount;

    /// <summary>Takes over <paramref name="writer"/> (its header already written): from now on only the writer thread uses it, until <see cref="Dispose"/>.</summary>
    public TraceWriterThread(TraceWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        _writer = writer;
        Batcher = new EventBatcher(new Consumer(this), NewBatch(), writer.EventCount);
        _flushedCount = writer.EventCount;
        WriterThreads.Run(WriteLoop, _stopped.Set);
    }

    /// <summary>
    /// Opens the writer on the writer thread: <paramref name="open"/> (a new <see cref="TraceWriter"/>,
    /// which writes the header and guest image), then a flush of the stream, while the recording
    /// thread goes on (it builds the machine meanwhile). <see cref="WaitOpened"/> waits for both;
    /// events appended before are written after them, as on the recording thread. An error in
    /// <paramref name="open"/> is reported like any write error (at the next call that waits or appends).
    /// </summary>
    public TraceWriterThread(Func<TraceWriter> open)
    {
        ArgumentNullException.ThrowIfNull(open);
        _open = open;
        _endsAsked = _opens = 1; // the open is the first request the writer completes
        Batcher = new EventBatcher(new Consumer(this), NewBatch(), 0);
        WriterThreads.Run(WriteLoop, _stopped.Set);
    }

    /// <summary>Returns once the writer is open and its header and guest image are in the stream (at once for a writer handed over open); throws the error that stopped it.</summary>
    public void WaitOpened()
    {
        ThrowIfClosed();
        while (Volatile.Read(ref _endsDone) < _opens) _endDone.WaitOne();
        ThrowIfFailed();
    }

    /// <summary>
    /// Where the recording thread appends: what the Append methods call, and what the recorder's
    /// <see cref="TraceObserver.Batches"/> calls directly (the per-event path without an interface call).
    /// </summary>
    public EventBatcher Batcher { get; }

    /// <summary>Events appended so far.</summary>
    public long EventCount => Batcher.EventCount;

    /// <summary>Events appended since the last <see cref="Flush"/> (not yet known to be in the stream).</summary>
    public int PendingEvents => (int)(Batcher.EventCount - _flushedCount);

    /// <inheritdoc cref="TraceWriter.AppendHypercall"/>
    public void AppendHypercall(ulong icount, int number, ReadOnlySpan<uint> args, long result, ulong digest, uint site, int vcpu) =>
        Batcher.Hypercall(icount, number, args, result, digest, site, vcpu);

    /// <inheritdoc cref="TraceWriter.AppendUpcall"/>
    public void AppendUpcall(ulong icount, int vcpu, ReadOnlySpan<uint> ports, uint eip, uint handler) =>
        Batcher.Upcall(icount, vcpu, ports, eip, handler);

    /// <inheritdoc cref="TraceWriter.Append"/>
    public void Append(TraceEvent traceEvent) => Batcher.Append(traceEvent);

    /// <summary>Writes every event appended so far as a chunk and flushes the stream; returns when that is done.</summary>
    public void Flush()
    {
        ThrowIfClosed();
        HandOver(BatchEnd.Flush, null);
        _flushedCount = Batcher.EventCount;
    }

    /// <summary>
    /// Has the writer write every event appended so far as a chunk and flush the stream, without
    /// waiting for it (the recorder's periodic flushes: the guest runs on meanwhile). The events stay
    /// counted in <see cref="PendingEvents"/>, since they are not known to be in the stream yet; a
    /// later <see cref="Flush"/> waits for this one too. The bytes are those of <see cref="Flush"/>.
    /// </summary>
    public void RequestFlush()
    {
        ThrowIfClosed();
        HandOver(BatchEnd.Flush, null, wait: false);
    }

    /// <summary>Writes the pending events, the index (with <paramref name="summary"/>) and the footer; returns when that is done.</summary>
    public void Complete(TraceSummary summary)
    {
        ArgumentNullException.ThrowIfNull(summary);
        ThrowIfClosed();
        HandOver(BatchEnd.Complete, summary);
        _flushedCount = Batcher.EventCount;
        _completed = true;
        Batcher.Refuse();
    }

    /// <summary>Writes every event appended so far (unless completed), stops the writer thread's work for this writer (the thread then waits for the next writer) and disposes the writer.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Batcher.Refuse();
        Queue(Batcher.Take(), BatchEnd.Stop, null);
        _stopped.Wait(); // the writer thread uses none of the events below after this, nor any batch
        GiveBack();
        _batchQueued.Dispose();
        _batchFreed.Dispose();
        _endDone.Dispose();
        var failure = _failure;
        if (failure == null)
            _writer!.Dispose();
        else
        {
            // The stream failed already: the first error is the one reported.
            try { _writer?.Dispose(); } catch (Exception e) when (e is not OutOfMemoryException) { }
            if (!_failureReported)
            {
                _failureReported = true;
                failure.Throw();
            }
        }
    }

    /// <summary>
    /// Empty batches of recordings that have closed, for the process's next recording (at most
    /// <see cref="MaxBatches"/>): a process that records again and again (the bench, a test run)
    /// allocates the 2 MB of batches once, not for every recording. A cleared batch holds nothing of
    /// its recording (<see cref="EventBatch.Clear"/>).
    /// </summary>
    private static readonly ConcurrentStack<EventBatch> Spare = new();

    /// <summary>A spare batch, or a new one.</summary>
    private EventBatch NewBatch()
    {
        if (!Spare.TryPop(out var batch)) batch = new EventBatch();
        _all.Add(batch);
        return batch;
    }

    /// <summary>Gives this writer's batches to <see cref="Spare"/> (all cleared by the writer thread, which has stopped).</summary>
    private void GiveBack()
    {
        foreach (var batch in _all)
            if (Spare.Count < MaxBatches) Spare.Push(batch);
        _all.Clear();
    }

    /// <summary>The batcher's side of the hand-over (kept off the public surface).</summary>
    private sealed class Consumer(TraceWriterThread t) : IEventBatchConsumer
    {
        public void BatchFull() => t.HandOver(BatchEnd.None, null);
        public void ThrowRefusal() => t.ThrowIfClosed();
    }

    /// <summary>Queues the batch being filled; for a flush or completion waits until the writer has done it (unless told not to).</summary>
    /// <remarks>
    /// Never inlined: inlined into the per-event append (as full optimisation did), its event
    /// signalling, a P/Invoke, made every append set up a P/Invoke frame (a thread-local lookup).
    /// </remarks>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void HandOver(BatchEnd end, TraceSummary? summary, bool wait = true)
    {
        int asked = Queue(Batcher.Take(), end, summary);
        // Requests are done in order, so a wait for the latest also covers any earlier unwaited one.
        while (wait && end != BatchEnd.None && Volatile.Read(ref _endsDone) < asked) _endDone.WaitOne();
        // A new batch while fewer than MaxBatches exist, then the one written longest ago (_free is in
        // the order the writer freed them); else wait for one. Filling the batch the writer has just
        // read (as when a written batch was taken first: two or three batches went round) made every
        // entry's store find its cache line shared with the writer thread's core: the store waited for
        // the line, later stores queued behind it, and the recording thread stalled at the next code
        // with many stores (perf, ticker recordings: Hypervisor.TryRestore, 0.25-1.5 ms a recording,
        // varying from process to process). A batch filled again only after 31 others, 2 MB of entries
        // later, is no longer held by the writer thread's core, which has read 2 MB since and whose L2 cache
        // holds 1 MB (docs/record-replay.md "The trace writer thread").
        EventBatch? next = null;
        if (_all.Count < MaxBatches) next = NewBatch();
        else _free.TryDequeue(out next);
        if (next == null) Wake(); // about to wait for the writer: make sure it is not waiting for a signal
        while (next == null && !_free.TryDequeue(out next)) _batchFreed.WaitOne();
        Batcher.Continue(next!);
        Filling?.Invoke(next!);
        ThrowIfFailed();
    }

    /// <summary>Test hook: told of each batch the recording thread goes on filling after a hand-over (the order of <see cref="HandOver"/>'s choices).</summary>
    internal Action<EventBatch>? Filling { get; set; }

    /// <summary>Queues <paramref name="batch"/> for the writer; returns the number of flush/complete requests so far.</summary>
    private int Queue(EventBatch batch, BatchEnd end, TraceSummary? summary)
    {
        batch.End = end;
        batch.Summary = summary;
        if (end != BatchEnd.None) _endsAsked++;
        _queued.Enqueue(batch);
        if (end != BatchEnd.None || _queued.Count >= WakeAt) Wake();
        return _endsAsked;
    }

    /// <summary>
    /// Full batches queued at which the recording thread wakes the writer (flush, completion and stop
    /// requests wake it at once). Otherwise the writer wakes by itself (<see cref="WritersWait"/>) and
    /// the recording thread makes no system call for it: a wake-up is a futex call, and, for a writer
    /// whose core is idle, an inter-processor interrupt, which in a virtual machine costs the waking
    /// thread ~10 µs (perf, ticker recordings: try_to_wake_up under futex_wake, ~0.3 ms a run with a
    /// wake-up every fourth batch). Four batches: the writer is woken long before the recording thread
    /// would have to wait for a free batch.
    /// </summary>
    private const int WakeAt = 4;

    private void Wake() => _batchQueued.Set();

    /// <summary>
    /// How long the writer sleeps when nothing is queued before it looks again: <see cref="BusyPollMs"/>
    /// while batches keep coming (a guest full of events fills a batch in well under a millisecond, so
    /// it finds one or two each time and is seldom woken), longer and longer while none come, up to
    /// <see cref="IdlePollMs"/> (an idle guest costs the writer a few wake-ups a second); a batch it
    /// finds brings it back to the short wait.
    /// </summary>
    private int WritersWait(int emptyLooks) => emptyLooks < IdleAfterLooks ? BusyPollMs : Math.Min(IdlePollMs, BusyPollMs << Math.Min(emptyLooks - IdleAfterLooks + 1, 8));

    private const int BusyPollMs = 1, IdlePollMs = 200, IdleAfterLooks = 16;

    /// <summary>The writer thread's work for this writer: opening it if asked, then the queued batches until the stop.</summary>
    private void WriteLoop()
    {
        if (_open is { } open) Open(open);
        int emptyLooks = 0;
        while (true)
        {
            if (!_queued.TryDequeue(out var batch))
            {
                _batchQueued.WaitOne(WritersWait(emptyLooks));
                if (emptyLooks < IdleAfterLooks + 8) emptyLooks++;
                continue;
            }
            emptyLooks = 0;
            var end = batch.End;
            if (_failure == null)
            {
                try
                {
                    batch.WriteTo(_writer!);
                    if (end == BatchEnd.Flush) _writer!.Flush();
                    else if (end == BatchEnd.Complete) _writer!.Complete(batch.Summary!);
                }
                catch (Exception e)
                {
                    _failure = ExceptionDispatchInfo.Capture(e);
                    Batcher.Refuse();
                }
            }
            batch.Clear();
            if (end == BatchEnd.Stop) return;
            _free.Enqueue(batch);
            _batchFreed.Set();
            if (end != BatchEnd.None)
            {
                Interlocked.Increment(ref _endsDone);
                _endDone.Set();
            }
        }
    }

    /// <summary>The writer thread's first request: opening the writer and flushing its header and guest image.</summary>
    private void Open(Func<TraceWriter> open)
    {
        try
        {
            _writer = open();
            _writer.Flush();
        }
        catch (Exception e)
        {
            _failure = ExceptionDispatchInfo.Capture(e);
            Batcher.Refuse();
        }
        Interlocked.Increment(ref _endsDone);
        _endDone.Set();
    }

    private void ThrowIfFailed()
    {
        if (_failure is { } failure && !_failureReported)
        {
            _failureReported = true;
            failure.Throw();
        }
    }

    private void ThrowIfClosed()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_completed) throw new InvalidOperationException("The trace is already complete");
        ThrowIfFailed();
        if (_failure != null) throw new InvalidOperationException("The trace writer failed earlier (the error was reported then)");
    }
}
