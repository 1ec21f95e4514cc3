using System.Collections;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

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
    /// <summary>Row kinds: a column hypercall or upcall; an event object that is a check (<see cref="ObjectSlot"/>) or an input (<see cref="InputSlot"/>).</summary>
    internal const byte HypercallSlot = 0, UpcallSlot = 1, ObjectSlot = 2, InputSlot = 3;

    /// <summary>
    /// One event's plain values, side by side in 64 bytes, so comparing a produced hypercall or upcall
    /// with it reads one row and nothing else (one or two cache lines): the first 32 bytes (count,
    /// result, digest, site, number, in this order) are compared as one block, the next 8 (vCPU,
    /// slot, <see cref="Held"/>, zero) as one word, then the values held in the row
    /// (<see cref="ColumnCursor"/>). Up to <see cref="InlineValues"/> arguments or ports (a plain
    /// hypercall's six; an upcall's few) are held in the row itself; a longer list is in the chunk's
    /// values array and the row holds where (<see cref="ValueStart"/>, <see cref="ValueEnd"/>).
    /// </summary>
    [StructLayout(LayoutKind.Explicit, Size = 64)]
    internal struct Row
    {
        [FieldOffset(0)] public ulong Icount;
        [FieldOffset(8)] public long Result;
        [FieldOffset(16)] public ulong Digest;
        /// <summary>Hypercall site; upcall interrupted code (Eip).</summary>
        [FieldOffset(24)] public uint Site;
        /// <summary>Hypercall number; upcall callback (Handler).</summary>
        [FieldOffset(28)] public int Number;
        [FieldOffset(32)] public int Vcpu;
        [FieldOffset(36)] public byte Slot;
        /// <summary>How many values the row holds itself (0..<see cref="InlineValues"/>), or <see cref="OutOfLine"/>.</summary>
        [FieldOffset(37)] public byte Held;
        /// <summary>Always 0 (compared with <see cref="Vcpu"/>, <see cref="Slot"/> and <see cref="Held"/> as one word).</summary>
        [FieldOffset(38)] public ushort Zero;
        /// <summary>The first of the values held in the row (<see cref="InlineValues"/> of them from here).</summary>
        [FieldOffset(40)] public uint Value0;
        /// <summary>With <see cref="Held"/> <see cref="OutOfLine"/>: the arguments or ports are the chunk's values [ValueStart..ValueEnd).</summary>
        [FieldOffset(40)] public int ValueStart;
        [FieldOffset(44)] public int ValueEnd;
    }

    /// <summary>Values a <see cref="Row"/> holds itself (a plain hypercall's six argument registers).</summary>
    internal const int InlineValues = 6;

    /// <summary><see cref="Row.Held"/> of a row whose values are in the chunk's values array.</summary>
    internal const byte OutOfLine = 0xFF;

    /// <summary>The word at byte 32 of a row (vCPU, slot, values held, zero) for these values.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong KindWord(int vcpu, byte slot, int held) => (uint)vcpu | (ulong)slot << 32 | (ulong)(uint)held << 40;

    /// <summary>Value <paramref name="k"/> of those held in row <paramref name="r"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ref uint InlineValue(ref Row r, int k) => ref Unsafe.Add(ref r.Value0, k);

    private Row[] _rows;
    private uint[] _values;
    /// <summary>The rows came from <see cref="ChunkBuffers"/>; the values array it lent (kept when a longer list replaced it), or null.</summary>
    private bool _rowsPooled;
    private uint[]? _valuesLent;

    /// <summary>The rows, one per event (for <see cref="ColumnCursor"/>: read in place, never changed once decoded).</summary>
    internal Row[] Rows => _rows;

    /// <summary>The hypercall arguments and upcall ports the rows point into.</summary>
    internal uint[] AllValues => _values;
    /// <summary>The end of the values added so far (the next event's list starts here).</summary>
    private int _valueCount;
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
        _rows = ChunkBuffers.Rows(count, out _rowsPooled);
        _values = countOnly ? [] : _valuesLent = ChunkBuffers.Values(Math.Max(values, 16));
    }

    /// <summary>
    /// Gives the rows and values back to <see cref="ChunkBuffers"/>, for a reader that holds the only
    /// reference to this chunk and is done with it (Replayvisor.Replay's ChunkCache, when no cursor stands
    /// in it). The chunk is empty afterwards: reading an event of it throws.
    /// </summary>
    internal void ReturnBuffers()
    {
        if (_rowsPooled) ChunkBuffers.Return(_rows);
        if (_valuesLent != null) ChunkBuffers.Return(_valuesLent);
        _rowsPooled = false;
        _valuesLent = null;
        _rows = [];
        _values = [];
    }

    private readonly bool _countOnly;

    /// <summary>The number of events.</summary>
    public int Count { get; }

    /// <summary>How many of the events are <see cref="InputEvent"/>s.</summary>
    public int InputCount => _inputs;

    /// <summary>The instruction count of event <paramref name="index"/> (without building it).</summary>
    public ulong IcountAt(int index) => _rows[index].Icount;

    /// <summary>Whether event <paramref name="index"/> is an <see cref="InputEvent"/> (without building it).</summary>
    public bool IsInput(int index) => _rows[index].Slot == InputSlot;

    /// <summary>
    /// The first event at or after <paramref name="from"/> that is an <see cref="InputEvent"/>
    /// (<paramref name="inputs"/>) or is not one; <see cref="Count"/> when there is none. Nothing is built.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int NextOfKind(int from, bool inputs)
    {
        var rows = _rows;
        for (int i = from; (uint)i < (uint)rows.Length; i++)
            if ((rows[i].Slot == InputSlot) == inputs)
            {
                PrefetchAfter(i);
                return i;
            }
        return Count;
    }

    /// <summary>
    /// Asks the CPU to start loading what a replay reads next after finding event <paramref name="index"/>:
    /// the next row, which holds that event's values too (a hint: nothing is read or changed). A replay
    /// compares one row per produced event, hundreds of nanoseconds of guest work apart, in a chunk
    /// another thread decoded; without the hint the next row was a cache miss met at the comparison
    /// (perf: the hottest loads of the replay's match).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void PrefetchAfter(int index) => PrefetchAfter(_rows, index);

    /// <inheritdoc cref="PrefetchAfter(int)"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static unsafe void PrefetchAfter(Row[] rows, int index)
    {
        if (!Sse.IsSupported || (uint)(index + 1) >= (uint)rows.Length) return;
        // A row can straddle two cache lines: its first and last bytes. (Pointer arithmetic, not
        // `ref next.Slot`: a field access made the JIT load the row to check it, the very miss.)
        byte* next = (byte*)Unsafe.AsPointer(ref rows[index + 1]);
        Sse.Prefetch0(next);
        Sse.Prefetch0(next + sizeof(Row) - 1);
    }

    /// <summary>Event <paramref name="index"/>, built on first use.</summary>
    public TraceEvent this[int index] => (_objects ??= new TraceEvent?[Count])[index] ??= Build(index);

    /// <summary>
    /// True when event <paramref name="index"/> equals the hypercall event with these values and no
    /// multicall entries or guest-memory bytes: <c>new HypercallEvent(icount, number, args, result,
    /// default, default, digest, site) { Vcpu = vcpu }</c>, compared without building either.
    /// False otherwise (compare the event objects to know more).
    /// </summary>
    public bool HypercallEquals(int index, ulong icount, int vcpu, int number, ReadOnlySpan<uint> args, long result, ulong digest, uint site) =>
        IsHypercall(ref _rows[index], _values, icount, vcpu, number, args, result, digest, site);

    /// <summary>
    /// True when event <paramref name="index"/> equals <c>new UpcallEvent(icount, vcpu, ports) { Eip = eip,
    /// Handler = handler }</c>, compared without building either; false otherwise.
    /// </summary>
    public bool UpcallEquals(int index, ulong icount, int vcpu, ReadOnlySpan<uint> ports, uint eip, uint handler) =>
        IsUpcall(ref _rows[index], _values, icount, vcpu, ports, eip, handler);

    /// <summary>
    /// <see cref="HypercallEquals"/> on a row and the chunk's values (also the replay's per-event match,
    /// <see cref="ColumnCursor"/>): the count, result, digest, site and number are compared as one
    /// 32-byte block (the row's first fields, in this order), the vCPU, kind and number of values as
    /// one word, six arguments (held in the row) as two blocks.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool IsHypercall(ref Row r, uint[] values, ulong icount, int vcpu, int number, ReadOnlySpan<uint> args, long result, ulong digest, uint site)
    {
        if (Vector256.LoadUnsafe(ref Unsafe.As<Row, ulong>(ref r)) != Vector256.Create(icount, (ulong)result, digest, site | ((ulong)(uint)number << 32)))
            return false;
        if (args.Length != InlineValues) return r.Vcpu == vcpu && r.Slot == HypercallSlot && ValuesEqual(ref r, values, args);
        ref byte row = ref Unsafe.As<Row, byte>(ref r);
        ref byte p = ref Unsafe.As<uint, byte>(ref MemoryMarshal.GetReference(args));
        return Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref row, 32)) == KindWord(vcpu, HypercallSlot, InlineValues)
            && Vector128.LoadUnsafe(ref Unsafe.Add(ref row, 40)) == Vector128.LoadUnsafe(ref p)
            && Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref row, 56)) == Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, 16));
    }

    /// <summary>
    /// <see cref="UpcallEquals"/> on a row and the chunk's values: an upcall row's result and digest
    /// are 0, so its count, site and callback are compared as one 32-byte block like a hypercall's;
    /// the vCPU, kind and number of ports as one word, then the ports held in the row.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool IsUpcall(ref Row r, uint[] values, ulong icount, int vcpu, ReadOnlySpan<uint> ports, uint eip, uint handler)
    {
        if (Vector256.LoadUnsafe(ref Unsafe.As<Row, ulong>(ref r)) != Vector256.Create(icount, 0, 0, eip | ((ulong)handler << 32)))
            return false;
        if (ports.Length > InlineValues) return r.Vcpu == vcpu && r.Slot == UpcallSlot && ValuesEqual(ref r, values, ports);
        if (Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref Unsafe.As<Row, byte>(ref r), 32)) != KindWord(vcpu, UpcallSlot, ports.Length))
            return false;
        // Mostly one or two ports, compared here rather than in a call.
        for (int i = 0; i < ports.Length; i++)
            if (InlineValue(ref r, i) != ports[i]) return false;
        return true;
    }

    /// <summary>Row <paramref name="r"/>'s arguments or ports (held in it or in <paramref name="values"/>) are <paramref name="produced"/>.</summary>
    /// <remarks>Out of line: rare (a list of other than six arguments, more than six ports), and inline it made the JIT spill the per-event paths' values.</remarks>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static bool ValuesEqual(ref Row r, uint[] values, ReadOnlySpan<uint> produced) =>
        ValuesOf(ref r, values).SequenceEqual(produced);

    /// <summary>Row <paramref name="r"/>'s arguments or ports: held in it, or a range of <paramref name="values"/>.</summary>
    private static ReadOnlySpan<uint> ValuesOf(ref Row r, uint[] values) =>
        r.Held == OutOfLine ? values.AsSpan(r.ValueStart, r.ValueEnd - r.ValueStart) : MemoryMarshal.CreateReadOnlySpan(ref r.Value0, r.Held);

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
            if (_rows[i].Slot >= ObjectSlot) yield return (i, _objects![i]!);
    }

    /// <summary>Event <paramref name="index"/>'s arguments or ports (a hypercall or upcall row's).</summary>
    internal ReadOnlySpan<uint> Values(int index) => ValuesOf(ref _rows[index], _values);

    private TraceEvent Build(int index)
    {
        ref readonly Row r = ref _rows[index];
        return r.Slot switch
        {
            HypercallSlot => new HypercallEvent(r.Icount, r.Number, Values(index).ToArray(), r.Result, default, default, r.Digest, r.Site) { Vcpu = r.Vcpu },
            _ => new UpcallEvent(r.Icount, r.Vcpu, Values(index).ToArray()) { Eip = r.Site, Handler = (uint)r.Number },
        };
    }

    // ---- filled by the decoder, event by event in order ----

    /// <summary>Starts event <paramref name="index"/>'s list of values (call before its <see cref="AddValue"/>s; again to drop them).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void BeginValues(int index)
    {
        if (_countOnly) return;
        ref Row r = ref _rows[index];
        // Events are filled in order: a second start of the same event's list (a multicall stored as an object) drops its values.
        // Told by the index, not by reading the row: a row's first access is a write (see _valuesOf).
        if (_valuesOf == index && r.Held == OutOfLine) _valueCount = r.ValueStart;
        _valuesOf = index;
        r.Held = 0;
    }

    /// <summary>
    /// The event whose list of values was started last (-1: none). The rows may be fresh memory (a chunk's
    /// rows pass the large object heap's 85,000 bytes): a row read before it is written maps the kernel's
    /// shared zero page, and the write that follows copies it and flushes the TLB of every core running
    /// the process, the replaying thread's included (perf: smp_call_function_many_cond under do_wp_page,
    /// hundreds of IPIs per replay).
    /// </summary>
    private int _valuesOf = -1;

    /// <summary>Adds a value to event <paramref name="index"/>'s list: held in its row up to <see cref="InlineValues"/>, else all in the values array.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void AddValue(int index, uint value)
    {
        if (_countOnly) return;
        ref Row r = ref _rows[index];
        int held = r.Held;
        if (held < InlineValues)
        {
            InlineValue(ref r, held) = value;
            r.Held = (byte)(held + 1);
        }
        else AddValueOutOfLine(ref r, value);
    }

    /// <summary>A value past the <see cref="InlineValues"/> a row holds: the list moves to the values array (the row then holds where).</summary>
    private void AddValueOutOfLine(ref Row r, uint value)
    {
        if (r.Held != OutOfLine)
        {
            int start = _valueCount;
            Room(start + InlineValues);
            for (int k = 0; k < InlineValues; k++) _values[start + k] = InlineValue(ref r, k);
            // ValueStart and ValueEnd share the row's bytes with the values just moved.
            r.ValueStart = start;
            r.ValueEnd = _valueCount = start + InlineValues;
            r.Held = OutOfLine;
        }
        int at = _valueCount;
        Room(at + 1);
        _values[at] = value;
        _valueCount = r.ValueEnd = at + 1;
    }

    private void Room(int count)
    {
        while (count > _values.Length) Array.Resize(ref _values, Math.Max(16, _values.Length * 2));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void SetHypercall(int index, ulong icount, int vcpu, int number, long result, ulong digest, uint site)
    {
        ref Row r = ref _rows[index];
        r.Slot = HypercallSlot;
        r.Icount = icount;
        if (_countOnly) return;
        r.Zero = 0;
        r.Vcpu = vcpu;
        r.Number = number;
        r.Result = result;
        r.Digest = digest;
        r.Site = site;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void SetUpcall(int index, ulong icount, int vcpu, uint eip, uint handler)
    {
        ref Row r = ref _rows[index];
        r.Slot = UpcallSlot;
        r.Icount = icount;
        if (_countOnly) return;
        r.Zero = 0;
        r.Vcpu = vcpu;
        r.Site = eip;
        r.Number = (int)handler;
        r.Result = 0;
        r.Digest = 0;
    }

    /// <summary>An event of any other kind, built by the decoder (its value list stays empty).</summary>
    internal void SetObject(int index, TraceEvent e)
    {
        BeginValues(index);
        ref Row r = ref _rows[index];
        r.Slot = e is InputEvent ? InputSlot : ObjectSlot;
        r.Icount = e.Icount;
        // Every field, as for the column kinds (the row may be a pooled one: ChunkBuffers).
        r.Result = 0;
        r.Digest = 0;
        r.Site = 0;
        r.Number = 0;
        r.Vcpu = 0;
        r.Zero = 0;
        (_objects ??= new TraceEvent?[Count])[index] = e;
        if (e is InputEvent) _inputs++;
    }
}
