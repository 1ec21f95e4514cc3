using Replayvisor.Engine.Trace;

namespace Replayvisor.Record;

/// <summary>
/// Recorded events as plain values, in recording order, on their way from the recording thread to
/// the trace writer thread (<see cref="TraceWriterThread"/>): a hypercall or an upcall is copied
/// into preallocated arrays (no object per event), any other event is kept as its object. Refilled
/// after the writer has written it.
/// </summary>
internal sealed class EventBatch
{
    public const int Capacity = 4096;

    private enum Kind : byte { Whole, Hypercall, Upcall }

    private struct Raw
    {
        public ulong Icount;
        public long Result;
        public ulong Digest;
        public uint Site, Handler;
        public int Number, Vcpu;
        public int ValueStart, ValueCount;
        public Kind Kind;
        public TraceEvent? Whole;
    }

    private readonly Raw[] _events = new Raw[Capacity];
    private uint[] _values = new uint[Capacity * 4];
    private int _valueCount;

    public int Count { get; private set; }
    public bool IsFull => Count == Capacity;

    /// <summary>What the writer does after the batch's events (set by the recording thread before handing it over).</summary>
    public BatchEnd End { get; set; }
    /// <summary>The summary written for <see cref="BatchEnd.Complete"/>.</summary>
    public TraceSummary? Summary { get; set; }

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
        e.ValueStart = Values(args);
        e.ValueCount = args.Length;
    }

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
        e.Whole = whole;
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
    public void WriteTo(TraceWriter writer)
    {
        for (int i = 0; i < Count; i++)
        {
            ref Raw e = ref _events[i];
            var values = _values.AsSpan(e.ValueStart, e.ValueCount);
            switch (e.Kind)
            {
                case Kind.Hypercall: writer.AppendHypercall(e.Icount, e.Number, values, e.Result, e.Digest, e.Site, e.Vcpu); break;
                case Kind.Upcall: writer.AppendUpcall(e.Icount, e.Vcpu, values, e.Site, e.Handler); break;
                default: writer.Append(e.Whole!); break;
            }
        }
    }

    /// <summary>Empties the batch for refilling (drops the references to whole events).</summary>
    public void Clear()
    {
        for (int i = 0; i < Count; i++) _events[i].Whole = null;
        Count = 0;
        _valueCount = 0;
        End = BatchEnd.None;
        Summary = null;
    }
}

/// <summary>What the writer thread does after a batch's events.</summary>
internal enum BatchEnd
{
    None,
    /// <summary>Writes the pending events as a chunk and flushes the stream (TraceWriter.Flush).</summary>
    Flush,
    /// <summary>Writes the index and footer (TraceWriter.Complete).</summary>
    Complete,
    /// <summary>Nothing more will come: the thread ends.</summary>
    Stop,
}
