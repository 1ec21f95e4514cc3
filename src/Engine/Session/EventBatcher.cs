using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;
using Replayvisor.Engine.Trace;
using Replayvisor.Engine.Xen;

namespace Replayvisor.Engine.Session;

/// <summary>
/// The recording thread's per-event path into the trace writer thread (docs/record-replay.md "The
/// trace writer thread"): appends events in icount order to the <see cref="EventBatch"/> being
/// filled and, when it is full, has the consumer (Replayvisor.Record.TraceWriterThread) take it and
/// give the next one. The Xen model's hypercalls and upcalls come here straight from
/// <see cref="TraceObserver"/> (<see cref="TraceObserver.Batches"/>): no interface call, no event
/// object, the six argument registers copied as one block.
/// </summary>
public sealed class EventBatcher
{
    private readonly IEventBatchConsumer _consumer;
    private EventBatch _current;
    // The batch being filled, as the per-event path uses it: its entries and how many are filled, kept
    // here (one object the path reads, not the batch and then its array), handed to the batch at Take.
    private EventBatch.Entry[] _entries;
    private int _filled;
    private ulong _lastIcount;
    /// <summary>Events in the batches handed over so far.</summary>
    private long _handedOver;
    /// <summary>Set by the consumer when it takes no more events (closed, completed or failed): checked once per event.</summary>
    private volatile bool _refusing;

    /// <param name="eventsBefore">Events the trace already holds (counted in <see cref="EventCount"/>).</param>
    public EventBatcher(IEventBatchConsumer consumer, EventBatch first, long eventsBefore)
    {
        ArgumentNullException.ThrowIfNull(consumer);
        ArgumentNullException.ThrowIfNull(first);
        if (first.Count != 0) throw new ArgumentException("The first batch must be empty", nameof(first));
        _consumer = consumer;
        _current = first;
        _entries = first.Entries;
        _handedOver = eventsBefore;
    }

    /// <summary>Events appended so far (and any the trace held before).</summary>
    public long EventCount => _handedOver + _filled;

    /// <summary>From now on every append asks the consumer why (<see cref="IEventBatchConsumer.ThrowRefusal"/>).</summary>
    public void Refuse() => _refusing = true;

    /// <summary>
    /// Takes the batch being filled (its events count as handed over) for the consumer to queue;
    /// until <see cref="Continue"/> gives the next one, an append throws.
    /// </summary>
    public EventBatch Take()
    {
        var taken = _current;
        taken.Filled(_filled);
        _handedOver += _filled;
        _filled = 0;
        _current = EventBatch.None;
        _entries = EventBatch.None.Entries;
        return taken;
    }

    /// <summary>Goes on filling <paramref name="next"/> (empty) after <see cref="Take"/>.</summary>
    public void Continue(EventBatch next)
    {
        ArgumentNullException.ThrowIfNull(next);
        if (next.Count != 0) throw new ArgumentException("The next batch must be empty", nameof(next));
        _current = next;
        _entries = next.Entries;
    }

    /// <summary>A hypercall whose arguments are the six argument registers (<see cref="TraceWriter.AppendHypercall"/> with them).</summary>
    /// <remarks>Inlined into <see cref="TraceObserver"/>: with the batch's append, the recording thread's whole per-event path is one method.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Hypercall(ulong icount, int number, in HypercallArgs args, long result, ulong digest, uint site, int vcpu)
    {
        Check(icount);
        EventBatch.PutHypercall(ref Next(), icount, number, in args, result, digest, site, vcpu);
        Added();
    }

    /// <inheritdoc cref="TraceWriter.AppendHypercall"/>
    public void Hypercall(ulong icount, int number, ReadOnlySpan<uint> args, long result, ulong digest, uint site, int vcpu)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(args.Length, 15, nameof(args));
        Check(icount);
        _current.PutHypercall(ref Next(), icount, number, args, result, digest, site, vcpu);
        Added();
    }

    /// <inheritdoc cref="TraceWriter.AppendUpcall"/>
    /// <remarks>Inlined into <see cref="TraceObserver"/>, as <see cref="Hypercall(ulong, int, in HypercallArgs, long, ulong, uint, int)"/>.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Upcall(ulong icount, int vcpu, ReadOnlySpan<uint> ports, uint eip, uint handler)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(vcpu);
        Check(icount);
        _current.PutUpcall(ref Next(), icount, vcpu, ports, eip, handler);
        Added();
    }

    /// <inheritdoc cref="TraceWriter.Append"/>
    public void Append(TraceEvent traceEvent)
    {
        ArgumentNullException.ThrowIfNull(traceEvent);
        Check(traceEvent.Icount);
        _current.PutWhole(ref Next(), traceEvent);
        Added();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Check(ulong icount)
    {
        if (_refusing) ThrowRefused();
        if (icount < _lastIcount) ThrowOutOfOrder(icount);
        _lastIcount = icount;
    }

    // The throw helpers are not marked NoInlining: the JIT then sees that they never return (it does
    // not inline a method that only throws) and keeps no value alive across their calls, so the
    // inlined append saves no registers for them.

    private void ThrowRefused()
    {
        _consumer.ThrowRefusal();
        throw new InvalidOperationException("No more events are taken");
    }

    /// <summary>The entry to fill: the next of the batch being filled (there is always one: a full batch is handed over at once; <see cref="EventBatch.None"/> has none, so between a hand-over and the next batch this throws).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref EventBatch.Entry Next() => ref _entries[_filled];

    /// <summary>
    /// Counts the entry just filled; hands the batch over when it is full, else asks for the line of the
    /// entry <see cref="PrefetchAhead"/> on: the batches are filled in turn (Replayvisor.Record.TraceWriterThread),
    /// so a batch's lines were last used 2 MB of entries ago and are usually no longer in this core's cache, and a
    /// store to a line not in the cache holds up the stores after it until the line arrives
    /// (docs/record-replay.md "The trace writer thread"). A prefetch is only a hint: it changes no value.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Added()
    {
        if (++_filled == _entries.Length) _consumer.BatchFull();
        else if (Sse.IsSupported && _filled + PrefetchAhead < _entries.Length) Prefetch(ref _entries[_filled + PrefetchAhead]);
    }

    /// <summary>Entries ahead of the one being filled whose line is asked for (a few events: microseconds ahead).</summary>
    private const int PrefetchAhead = 4;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Prefetch(ref EventBatch.Entry at) => Sse.Prefetch0(Unsafe.AsPointer(ref at));

    private void ThrowOutOfOrder(ulong icount) =>
        throw new ArgumentException($"Event at icount {icount} appended after icount {_lastIcount}; events must be in icount order", "traceEvent");
}

/// <summary>What takes the batches an <see cref="EventBatcher"/> fills (the trace writer thread).</summary>
public interface IEventBatchConsumer
{
    /// <summary>The batch being filled is full: take it (<see cref="EventBatcher.Take"/>) and give the next (<see cref="EventBatcher.Continue"/>).</summary>
    void BatchFull();

    /// <summary>Throws why no more events are taken (called by an append after <see cref="EventBatcher.Refuse"/>).</summary>
    void ThrowRefusal();
}
