using System.Collections;
using System.Runtime.CompilerServices;

namespace Replayvisor.Engine.Trace;

/// <summary>
/// The events of one compact events chunk, decoded into columns (docs/trace-format.md "Compact
/// events chunk payload"). Hypercalls (without multicall entries) and upcalls, the bulk of most
/// traces, stay plain values: their event objects are built only when the indexer asks for them,
/// and a replay compares what it produces with them directly (<see cref="HypercallEquals"/>,
/// <see cref="UpcallEquals"/>). Every other event is built as the chunk is decoded.
/// </summary>
public sealed class ChunkEvents : IReadOnlyList<TraceEvent>
{
    private const byte HypercallSlot = 0, UpcallSlot = 1, ObjectSlot = 2;

    private readonly byte[] _slot;
    private readonly ulong[] _icount;
    private readonly int[] _vcpu;
    /// <summary>Hypercall number; upcall callback (Handler).</summary>
    private readonly int[] _number;
    /// <summary>Hypercall site; upcall interrupted code (Eip).</summary>
    private readonly uint[] _site;
    private readonly long[] _result;
    private readonly ulong[] _digest;
    /// <summary>Event n's arguments (hypercall) or ports (upcall) are _values[_valueStart[n].._valueStart[n + 1]].</summary>
    private readonly int[] _valueStart;
    private uint[] _values;
    /// <summary>Built events (allocated with the first one: many chunks hold only hypercalls and upcalls until something asks for an object).</summary>
    private TraceEvent?[]? _objects;
    private int _inputs;

    /// <param name="count">The number of events.</param>
    /// <param name="values">How many hypercall arguments and upcall ports to expect (more grow the list).</param>
    /// <param name="countOnly">Keep only the kinds, counts and inputs (<see cref="TraceReader.ReadChunkInputCount"/>): the other columns are parsed and checked, not stored.</param>
    internal ChunkEvents(int count, int values, bool countOnly = false)
    {
        Count = count;
        _countOnly = countOnly;
        _slot = new byte[count];
        _icount = new ulong[count];
        int n = countOnly ? 0 : count;
        _values = new uint[countOnly ? 0 : Math.Max(values, 16)];
        _vcpu = new int[n];
        _number = new int[n];
        _site = new uint[n];
        _result = new long[n];
        _digest = new ulong[n];
        _valueStart = new int[countOnly ? 0 : count + 1];
    }

    private readonly bool _countOnly;

    /// <summary>The number of events.</summary>
    public int Count { get; }

    /// <summary>How many of the events are <see cref="InputEvent"/>s.</summary>
    public int InputCount => _inputs;

    /// <summary>The instruction count of event <paramref name="index"/> (without building it).</summary>
    public ulong IcountAt(int index) => _icount[index];

    /// <summary>Whether event <paramref name="index"/> is an <see cref="InputEvent"/> (without building it).</summary>
    public bool IsInput(int index) => _slot[index] == ObjectSlot && _objects![index] is InputEvent;

    /// <summary>Event <paramref name="index"/>, built on first use.</summary>
    public TraceEvent this[int index] => (_objects ??= new TraceEvent?[Count])[index] ??= Build(index);

    /// <summary>
    /// True when event <paramref name="index"/> equals the hypercall event with these values and no
    /// multicall entries or guest-memory bytes: <c>new HypercallEvent(icount, number, args, result,
    /// default, default, digest, site) { Vcpu = vcpu }</c>, compared without building either.
    /// False otherwise (compare the event objects to know more).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool HypercallEquals(int index, ulong icount, int vcpu, int number, ReadOnlySpan<uint> args, long result, ulong digest, uint site) =>
        _slot[index] == HypercallSlot && _icount[index] == icount && _vcpu[index] == vcpu && _number[index] == number
        && _result[index] == result && _digest[index] == digest && _site[index] == site && Values(index).SequenceEqual(args);

    /// <summary>
    /// True when event <paramref name="index"/> equals <c>new UpcallEvent(icount, vcpu, ports) { Eip = eip,
    /// Handler = handler }</c>, compared without building either; false otherwise.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool UpcallEquals(int index, ulong icount, int vcpu, ReadOnlySpan<uint> ports, uint eip, uint handler) =>
        _slot[index] == UpcallSlot && _icount[index] == icount && _vcpu[index] == vcpu && _site[index] == eip
        && (uint)_number[index] == handler && Values(index).SequenceEqual(ports);

    /// <summary>The events in order.</summary>
    public IEnumerator<TraceEvent> GetEnumerator()
    {
        for (int i = 0; i < Count; i++) yield return this[i];
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>The events built by the decoder (the kinds other than column hypercalls and upcalls).</summary>
    internal IEnumerable<(int Index, TraceEvent Event)> DecodedObjects()
    {
        for (int i = 0; i < Count; i++)
            if (_slot[i] == ObjectSlot) yield return (i, _objects![i]!);
    }

    private ReadOnlySpan<uint> Values(int index) => _values.AsSpan(_valueStart[index], _valueStart[index + 1] - _valueStart[index]);

    private TraceEvent Build(int index) => _slot[index] switch
    {
        HypercallSlot => new HypercallEvent(_icount[index], _number[index], Values(index).ToArray(), _result[index], default, default,
            _digest[index], _site[index]) { Vcpu = _vcpu[index] },
        _ => new UpcallEvent(_icount[index], _vcpu[index], Values(index).ToArray()) { Eip = _site[index], Handler = (uint)_number[index] },
    };

    // ---- filled by the decoder, event by event in order ----

    /// <summary>Starts event <paramref name="index"/>'s list of values (call before its <see cref="AddValue"/>s).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void BeginValues(int index)
    {
        if (!_countOnly) _valueStart[index + 1] = _valueStart[index];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void AddValue(int index, uint value)
    {
        if (_countOnly) return;
        int at = _valueStart[index + 1];
        if (at == _values.Length) Array.Resize(ref _values, _values.Length * 2);
        _values[at] = value;
        _valueStart[index + 1] = at + 1;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void SetHypercall(int index, ulong icount, int vcpu, int number, long result, ulong digest, uint site)
    {
        _slot[index] = HypercallSlot;
        _icount[index] = icount;
        if (_countOnly) return;
        _vcpu[index] = vcpu;
        _number[index] = number;
        _result[index] = result;
        _digest[index] = digest;
        _site[index] = site;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void SetUpcall(int index, ulong icount, int vcpu, uint eip, uint handler)
    {
        _slot[index] = UpcallSlot;
        _icount[index] = icount;
        if (_countOnly) return;
        _vcpu[index] = vcpu;
        _site[index] = eip;
        _number[index] = (int)handler;
    }

    /// <summary>An event of any other kind, built by the decoder (its value list stays empty).</summary>
    internal void SetObject(int index, TraceEvent e)
    {
        BeginValues(index);
        _slot[index] = ObjectSlot;
        _icount[index] = e.Icount;
        (_objects ??= new TraceEvent?[Count])[index] = e;
        if (e is InputEvent) _inputs++;
    }
}
