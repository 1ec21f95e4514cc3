using System.Runtime.CompilerServices;

namespace Replayvisor.Engine.Trace;

/// <summary>
/// Where a cursor over a trace's events stands in the chunk it is reading: the chunk's events
/// (<see cref="At"/>), the event's index there and how many events it has taken; a replay's
/// cursor over the recorded checks keeps its place here (Replayvisor.Replay.Streaming.EventCursor).
/// <para>
/// While <see cref="Enabled"/> and the chunk is held as columns (<see cref="ChunkEvents"/>), a
/// produced hypercall or upcall is compared here with the recorded row and, when equal, taken,
/// without building an event or going through the cursor: the replay's per-event path reads this
/// object and the row, which holds the event's values too (the recorder's reads its batch). The match is exact: every field
/// of <c>new HypercallEvent(icount, number, args, result, default, default, digest, site) { Vcpu = vcpu }</c>
/// (<see cref="ChunkEvents.HypercallEquals"/>), or of the upcall; anything else is false with
/// nothing changed, and the caller builds the event and compares it as usual.
/// </para>
/// </summary>
public sealed class ColumnCursor
{
    private ChunkEvents.Row[] _rows = [];
    private uint[] _values = [];
    /// <summary>Plain events may be matched: <see cref="Enabled"/> and <see cref="At"/> is held as columns.</summary>
    private bool _open;
    private bool _enabled;
    private IReadOnlyList<TraceEvent>? _at;

    /// <summary>The index of the cursor's event in its chunk.</summary>
    public int Index { get; set; }

    /// <summary>The events the cursor has taken.</summary>
    public long Taken { get; set; }

    /// <summary>Called when a match took the last event this cursor selects in its chunk (<see cref="At"/> became null).</summary>
    public Action? Left { get; set; }

    /// <summary>The chunk holding the cursor's event at <see cref="Index"/>, once found; null when not known.</summary>
    public IReadOnlyList<TraceEvent>? At
    {
        get => _at;
        set
        {
            _at = value;
            if (value is ChunkEvents c)
            {
                _rows = c.Rows;
                _values = c.AllValues;
            }
            else
            {
                _rows = [];
                _values = [];
            }
            _open = _enabled && value is ChunkEvents;
        }
    }

    /// <summary>
    /// Whether <see cref="TakeHypercall"/> and <see cref="TakeUpcall"/> may match (the owner clears it
    /// when every event must be compared as an object, or once the comparison has ended). Only for a
    /// cursor over the checks: a match skips the inputs after the event it takes.
    /// </summary>
    public bool Enabled
    {
        get => _enabled;
        set
        {
            _enabled = value;
            _open = value && _at is ChunkEvents;
        }
    }

    /// <summary>
    /// Takes the cursor's event if it is the plain hypercall with these values
    /// (<see cref="ChunkEvents.HypercallEquals"/>, the same comparison); false, with nothing changed, otherwise.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TakeHypercall(ulong icount, int vcpu, int number, ReadOnlySpan<uint> args, long result, ulong digest, uint site)
    {
        if (!_open) return false;
        var rows = _rows;
        int i = Index;
        if ((uint)i >= (uint)rows.Length) return false;
        if (!ChunkEvents.IsHypercall(ref rows[i], _values, icount, vcpu, number, args, result, digest, site)) return false;
        Took(rows, i);
        return true;
    }

    /// <summary>The values a row holds itself: an upcall with no more ports is matched without a call.</summary>
    internal const int HeldValues = ChunkEvents.InlineValues;

    /// <summary>As <see cref="TakeHypercall"/>, for an upcall (<see cref="ChunkEvents.UpcallEquals"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TakeUpcall(ulong icount, int vcpu, ReadOnlySpan<uint> ports, uint eip, uint handler)
    {
        if (!_open) return false;
        var rows = _rows;
        int i = Index;
        if ((uint)i >= (uint)rows.Length) return false;
        if (!ChunkEvents.IsUpcall(ref rows[i], _values, icount, vcpu, ports, eip, handler)) return false;
        Took(rows, i);
        return true;
    }

    /// <summary>Moves past row <paramref name="i"/>, just taken, to the chunk's next check; past the last, the chunk is left.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Took(ChunkEvents.Row[] rows, int i)
    {
        Taken++;
        int next = i + 1;
        while ((uint)next < (uint)rows.Length && rows[next].Slot == ChunkEvents.InputSlot) next++;
        Index = next;
        if (next < rows.Length) ChunkEvents.PrefetchAfter(rows, next);
        else LeaveChunk();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void LeaveChunk()
    {
        At = null;
        Left?.Invoke();
    }
}
