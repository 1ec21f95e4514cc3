using System.Runtime.CompilerServices;
using Replayvisor.Engine.Trace;
using Replayvisor.Engine.Xen;

namespace Replayvisor.Engine.Session;

/// <summary>
/// Recorded events as plain values, in recording order, on their way from the recording thread to
/// the trace writer thread (Replayvisor.Record.TraceWriterThread, filled through an
/// <see cref="EventBatcher"/>): a hypercall or an upcall is copied into preallocated arrays (no
/// object per event), any other event is kept as its object. Refilled after the writer has written it.
/// </summary>
public sealed class EventBatch
{
    /// <summary>
    /// Events per batch: 1,024 entries of 80 bytes stay under the large-object threshold (85,000
    /// bytes), so a batch comes from the GC's young generation, whose memory is reused at once,
    /// instead of fresh large-object pages that fault in when first written.
    /// </summary>
    public const int Capacity = 1024;

    private enum Kind : byte { Whole, Hypercall, Upcall }

    /// <summary>Up to six hypercall arguments kept in the event itself (a hypercall has six registers' worth: docs/xen-abi.md §1).</summary>
    [System.Runtime.CompilerServices.InlineArray(InlineArgs)]
    private struct Args
    {
        private uint _first;
    }

    private const int InlineArgs = 6;

    private struct Raw
    {
        public ulong Icount;
        public long Result;
        public ulong Digest;
        public uint Site, Handler;
        public int Number, Vcpu;
        /// <summary>Where the values (an upcall's ports, or more than six arguments) start in the batch's value array.</summary>
        public int ValueStart;
        public int ValueCount;
        public Kind Kind;
        public Args Args;
    }

    // No references in an entry: the GC never scans the entries, and they need no zeroing.
    private readonly Raw[] _events;
    /// <summary>The other events, in order (an entry of kind Whole holds its index in <see cref="Raw.ValueStart"/>).</summary>
    private readonly List<TraceEvent> _whole = [];
    private uint[] _values;
    private int _valueCount;

    public EventBatch() : this(Capacity) { }

    private EventBatch(int capacity)
    {
        _events = GC.AllocateUninitializedArray<Raw>(capacity);
        _values = GC.AllocateUninitializedArray<uint>(capacity * 4);
    }

    /// <summary>A batch that holds nothing (every add throws): what <see cref="EventBatcher"/> fills between a hand-over and the next batch.</summary>
    internal static EventBatch None { get; } = new(0);

    public int Count { get; private set; }
    public bool IsFull => Count == _events.Length;

    /// <summary>What the writer does after the batch's events (set by the recording thread before handing it over).</summary>
    public BatchEnd End { get; set; }
    /// <summary>The summary written for <see cref="BatchEnd.Complete"/>.</summary>
    public TraceSummary? Summary { get; set; }

    /// <summary>
    /// A hypercall whose arguments are the six argument registers: the same entry as
    /// <see cref="AddHypercall(ulong, int, ReadOnlySpan{uint}, long, ulong, uint, int)"/> with those six
    /// values, copied as one block (the Xen model's hypercalls, through <see cref="EventBatcher"/>).
    /// </summary>
    /// <remarks>Optimised at once, as the rest of the recording thread's per-event path.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void AddHypercall(ulong icount, int number, in HypercallArgs args, long result, ulong digest, uint site, int vcpu)
    {
        ref Raw e = ref _events[Count++];
        e.Kind = Kind.Hypercall;
        e.Icount = icount;
        e.Number = number;
        e.Result = result;
        e.Digest = digest;
        e.Site = site;
        e.Vcpu = vcpu;
        e.ValueCount = InlineArgs;
        Unsafe.As<Args, HypercallArgs>(ref e.Args) = args;
    }

    /// <remarks>Optimised at once, as the rest of the recording thread's per-event path.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void AddHypercall(ulong icount, int number, ReadOnlySpan<uint> args, long result, ulong digest, uint site, int vcpu)
    {
        ref Raw e = ref _events[Count++];
        e.Kind = Kind.Hypercall;
        e.Icount = icount;
        e.Number = number;
        e.Result = result;
        e.Digest = digest;
        e.Site = site;
        e.Vcpu = vcpu;
        e.ValueCount = args.Length;
        if (args.Length <= InlineArgs)
        {
            for (int i = 0; i < args.Length; i++) e.Args[i] = args[i]; // a loop: cheaper than a memmove call for six values
        }
        else e.ValueStart = Values(args);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void AddUpcall(ulong icount, int vcpu, ReadOnlySpan<uint> ports, uint eip, uint handler)
    {
        ref Raw e = ref _events[Count++];
        e.Kind = Kind.Upcall;
        e.Icount = icount;
        e.Vcpu = vcpu;
        e.Site = eip;
        e.Handler = handler;
        e.ValueStart = Values(ports);
        e.ValueCount = ports.Length;
    }

    public void Add(TraceEvent whole)
    {
        ref Raw e = ref _events[Count++];
        e.Kind = Kind.Whole;
        e.ValueStart = _whole.Count;
        _whole.Add(whole);
    }

    private int Values(ReadOnlySpan<uint> values)
    {
        int at = _valueCount;
        if (at + values.Length > _values.Length) Array.Resize(ref _values, Math.Max(_values.Length * 2, at + values.Length));
        var into = _values;
        for (int i = 0; i < values.Length; i++) into[at + i] = values[i]; // usually one or two: cheaper than a memmove call
        _valueCount = at + values.Length;
        return at;
    }

    /// <summary>Appends the events to <paramref name="writer"/> in order: the same calls the recording thread would have made.</summary>
    /// <remarks>
    /// Optimised at once, as are TraceWriter's and the encoder's append paths: the writer thread runs
    /// this a few dozen times a second, too few calls for tiered JIT, and their instrumented tier-0
    /// code made the ticker guest's 80,018 events cost ~11 ms of writer CPU instead of ~4 (bench harness).
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void WriteTo(TraceWriter writer)
    {
        for (int i = 0; i < Count; i++)
        {
            ref Raw e = ref _events[i];
            switch (e.Kind)
            {
                case Kind.Hypercall:
                    ReadOnlySpan<uint> args = e.ValueCount <= InlineArgs ? ((ReadOnlySpan<uint>)e.Args)[..e.ValueCount] : _values.AsSpan(e.ValueStart, e.ValueCount);
                    writer.AppendHypercall(e.Icount, e.Number, args, e.Result, e.Digest, e.Site, e.Vcpu);
                    break;
                case Kind.Upcall: writer.AppendUpcall(e.Icount, e.Vcpu, _values.AsSpan(e.ValueStart, e.ValueCount), e.Site, e.Handler); break;
                default: writer.Append(_whole[e.ValueStart]); break;
            }
        }
    }

    /// <summary>Empties the batch for refilling (drops the references to whole events).</summary>
    public void Clear()
    {
        _whole.Clear();
        Count = 0;
        _valueCount = 0;
        End = BatchEnd.None;
        Summary = null;
    }
}

/// <summary>What the writer thread does after a batch's events.</summary>
public enum BatchEnd
{
    None,
    /// <summary>Writes the pending events as a chunk and flushes the stream (TraceWriter.Flush).</summary>
    Flush,
    /// <summary>Writes the index and footer (TraceWriter.Complete).</summary>
    Complete,
    /// <summary>Nothing more will come: the thread ends.</summary>
    Stop,
}
