using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
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
    /// Events per batch: 1,024 entries of 64 bytes stay under the large-object threshold (85,000
    /// bytes), so a batch comes from the GC's young generation, whose memory is reused at once,
    /// instead of fresh large-object pages that fault in when first written.
    /// </summary>
    public const int Capacity = 1024;

    internal enum Kind : byte { Whole, Hypercall, Upcall }

    /// <summary>Up to six values kept in the entry itself: a hypercall's arguments (six registers' worth: docs/xen-abi.md §1) or an upcall's ports.</summary>
    [InlineArray(InlineValues)]
    internal struct Inline
    {
        private uint _first;
    }

    internal const int InlineValues = 6;

    /// <summary>
    /// One event in 64 bytes: what a hypercall needs in place; an upcall keeps its handler and
    /// the start of any out-of-line ports where a hypercall's result goes and their number where its
    /// digest goes; a hypercall with more than six arguments keeps where they start in its first inline value.
    /// </summary>
    [StructLayout(LayoutKind.Explicit, Size = 64)]
    internal struct Entry
    {
        [FieldOffset(0)] public ulong Icount;
        [FieldOffset(8)] public long Result;
        [FieldOffset(8)] public uint Handler;
        /// <summary>Where the values start in the batch's value array (upcall with more than six ports; a whole event's index in <see cref="_whole"/>).</summary>
        [FieldOffset(12)] public int ValueStart;
        [FieldOffset(16)] public ulong Digest;
        [FieldOffset(16)] public int PortCount;
        [FieldOffset(24)] public uint Site;
        [FieldOffset(28)] public int Number;
        [FieldOffset(32)] public Inline Values;
        [FieldOffset(32)] public HypercallArgs Registers;
        [FieldOffset(56)] public int Vcpu;
        [FieldOffset(60)] public ushort ArgCount;
        [FieldOffset(62)] public Kind Kind;
    }

    // No references in an entry: the GC never scans the entries, and they need no zeroing.
    private readonly Entry[] _events;
    /// <summary>The other events, in order (an entry of kind Whole holds its index in <see cref="Entry.ValueStart"/>).</summary>
    private readonly List<TraceEvent> _whole = [];
    private uint[] _values;
    private int _valueCount;
    private int _count;

    public EventBatch() : this(Capacity) { }

    private EventBatch(int capacity)
    {
        _events = GC.AllocateUninitializedArray<Entry>(capacity);
        _values = GC.AllocateUninitializedArray<uint>(capacity);
    }

    /// <summary>A batch that holds nothing (room for no entry): what <see cref="EventBatcher"/> fills between a hand-over and the next batch.</summary>
    internal static EventBatch None { get; } = new(0);

    /// <summary>The entries, filled in place by <see cref="EventBatcher"/> (which keeps the count until it hands the batch over).</summary>
    internal Entry[] Entries => _events;

    /// <summary>Events in the batch (set by the batcher when it hands the batch over; 0 while it is being filled).</summary>
    public int Count => _count;

    /// <summary>The batcher filled the first <paramref name="count"/> entries.</summary>
    internal void Filled(int count) => _count = count;

    /// <summary>What the writer does after the batch's events (set by the recording thread before handing it over).</summary>
    public BatchEnd End { get; set; }
    /// <summary>The summary written for <see cref="BatchEnd.Complete"/>.</summary>
    public TraceSummary? Summary { get; set; }

    /// <summary>
    /// A hypercall whose arguments are the six argument registers: the same entry as
    /// <see cref="PutHypercall(ref Entry, ulong, int, ReadOnlySpan{uint}, long, ulong, uint, int)"/> with those six
    /// values, copied as one block (the Xen model's hypercalls, through <see cref="EventBatcher"/>).
    /// </summary>
    /// <remarks>Inlined into the batcher: the recording thread's per-event path.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void PutHypercall(ref Entry e, ulong icount, int number, in HypercallArgs args, long result, ulong digest, uint site, int vcpu)
    {
        e.Icount = icount;
        e.Result = result;
        e.Digest = digest;
        e.Site = site;
        e.Number = number;
        e.Registers = args;
        e.Vcpu = vcpu;
        e.ArgCount = InlineValues;
        e.Kind = Kind.Hypercall;
    }

    /// <summary>A hypercall with up to 15 arguments (TraceWriter.AppendHypercall's).</summary>
    internal void PutHypercall(ref Entry e, ulong icount, int number, ReadOnlySpan<uint> args, long result, ulong digest, uint site, int vcpu)
    {
        e.Kind = Kind.Hypercall;
        e.Icount = icount;
        e.Number = number;
        e.Result = result;
        e.Digest = digest;
        e.Site = site;
        e.Vcpu = vcpu;
        e.ArgCount = (ushort)args.Length;
        if (args.Length <= InlineValues) args.CopyTo(e.Values);
        else e.Values[0] = (uint)Values(args);
    }

    /// <summary>An upcall.</summary>
    /// <remarks>Inlined into the batcher: the recording thread's per-event path.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void PutUpcall(ref Entry e, ulong icount, int vcpu, ReadOnlySpan<uint> ports, uint eip, uint handler)
    {
        e.Icount = icount;
        e.Handler = handler;
        e.Site = eip;
        e.Vcpu = vcpu;
        e.PortCount = ports.Length;
        e.Kind = Kind.Upcall;
        if (ports.Length <= InlineValues)
        {
            for (int i = 0; i < ports.Length; i++) e.Values[i] = ports[i]; // usually one or two: cheaper than a memmove call
        }
        else e.ValueStart = Values(ports);
    }

    /// <summary>Any other event, kept as its object.</summary>
    internal void PutWhole(ref Entry e, TraceEvent whole)
    {
        e.Kind = Kind.Whole;
        e.ValueStart = _whole.Count;
        _whole.Add(whole);
    }

    private int Values(ReadOnlySpan<uint> values)
    {
        int at = _valueCount;
        if (at + values.Length > _values.Length) Array.Resize(ref _values, Math.Max(_values.Length * 2, at + values.Length));
        values.CopyTo(_values.AsSpan(at));
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
            ref Entry e = ref _events[i];
            switch (e.Kind)
            {
                case Kind.Hypercall:
                    writer.AppendHypercall(e.Icount, e.Number, Values(ref e, (int)e.Values[0], e.ArgCount), e.Result, e.Digest, e.Site, e.Vcpu);
                    break;
                case Kind.Upcall: writer.AppendUpcall(e.Icount, e.Vcpu, Values(ref e, e.ValueStart, e.PortCount), e.Site, e.Handler); break;
                default: writer.Append(_whole[e.ValueStart]); break;
            }
        }
    }

    /// <summary>An entry's values: in the entry, or (more than six) from <paramref name="start"/> in the value array.</summary>
    private ReadOnlySpan<uint> Values(ref Entry e, int start, int count) =>
        count <= InlineValues ? ((ReadOnlySpan<uint>)e.Values)[..count] : _values.AsSpan(start, count);

    /// <summary>Empties the batch for refilling (drops the references to whole events).</summary>
    public void Clear()
    {
        _whole.Clear();
        _count = 0;
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
