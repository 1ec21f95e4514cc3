using Replayvisor.Engine.Trace;

namespace Replayvisor.Replay.Streaming;

/// <summary>
/// The last few decoded event chunks of a trace, read through its index on demand, so a replay
/// holds a bounded number of events however long the trace is (docs/time-travel.md "Streaming").
/// </summary>
public sealed class ChunkCache
{
    private const int Capacity = 4;
    private readonly TraceReader _reader;
    private readonly List<(int Index, IReadOnlyList<TraceEvent> Events)> _recent = new(Capacity);

    public ChunkCache(TraceReader reader) => _reader = reader;

    public TraceReader Reader => _reader;
    public int ChunkCount => _reader.Index.Count;

    /// <summary>
    /// The first damage met: a damaged chunk of the index (found when a cursor reaches it), or the
    /// damage that ended the reader's scan (found when a cursor reaches the end). Null while none is known.
    /// </summary>
    public TraceFormatException? Damage { get; private set; }

    /// <summary>Chunks before this one are intact; the events end here (the index's length while no damage is known).</summary>
    public int HeldChunks { get; private set; } = int.MaxValue;

    /// <summary>
    /// The events of chunk <paramref name="index"/>, or null when the trace's held events end before
    /// it: it is damaged (the first damaged chunk ends the events; docs/trace-format.md "Reading")
    /// or past the last chunk.
    /// </summary>
    public IReadOnlyList<TraceEvent>? TryGet(int index)
    {
        if (index >= Math.Min(HeldChunks, ChunkCount))
        {
            if (index >= ChunkCount && _reader.Damage is { } scanDamage && Damage == null) Damage = scanDamage;
            return null;
        }
        try
        {
            return Get(index);
        }
        catch (TraceFormatException ex) when (ex.Error == TraceError.DamagedChunk)
        {
            Damage ??= ex;
            HeldChunks = Math.Min(HeldChunks, index);
            return null;
        }
    }

    /// <summary>The events of chunk <paramref name="index"/>; a damaged chunk throws its TraceFormatException (with the offset) when reached.</summary>
    public IReadOnlyList<TraceEvent> Get(int index)
    {
        for (int i = 0; i < _recent.Count; i++)
            if (_recent[i].Index == index)
            {
                var hit = _recent[i];
                if (i != 0) { _recent.RemoveAt(i); _recent.Insert(0, hit); }
                return hit.Events;
            }
        var events = _reader.ReadChunk(_reader.Index[index]);
        if (_recent.Count == Capacity) _recent.RemoveAt(Capacity - 1);
        _recent.Insert(0, (index, events));
        return events;
    }
}

/// <summary>Where a cursor stands: the chunk, the event within it, and how many selected events it has taken.</summary>
public readonly record struct CursorPosition(int Chunk, int Event, long Taken);

/// <summary>
/// A forward cursor over the events of a trace that pass a filter, in file order. Its position
/// is plain data, so a snapshot of a replay can carry it and a restore can put it back.
/// </summary>
public sealed class EventCursor
{
    private readonly ChunkCache _chunks;
    private readonly Func<TraceEvent, bool> _filter;
    private int _chunk;
    private int _event;
    private TraceEvent? _peeked;
    private bool _atEnd;

    public EventCursor(ChunkCache chunks, Func<TraceEvent, bool> filter)
    {
        _chunks = chunks;
        _filter = filter;
    }

    /// <summary>Selected events taken so far.</summary>
    public long Taken { get; private set; }

    public CursorPosition Position
    {
        get => new(_chunk, _event, Taken);
        set
        {
            _chunk = value.Chunk;
            _event = value.Event;
            Taken = value.Taken;
            _peeked = null;
            _atEnd = false;
        }
    }

    /// <summary>The next selected event, or null at the end of the trace.</summary>
    public TraceEvent? Peek
    {
        get
        {
            if (_peeked != null || _atEnd) return _peeked;
            // Damage ends the events (ChunkCache.TryGet): a replay verifies the ones before it.
            while (_chunks.TryGet(_chunk) is { } events)
            {
                while (_event < events.Count)
                {
                    var e = events[_event];
                    if (_filter(e)) return _peeked = e;
                    _event++;
                }
                _chunk++;
                _event = 0;
            }
            _atEnd = true;
            return null;
        }
    }

    public bool AtEnd => Peek == null;

    /// <summary>Moves past the event <see cref="Peek"/> returned.</summary>
    public void Take()
    {
        if (Peek == null) return;
        _peeked = null;
        _event++;
        Taken++;
    }
}

/// <summary>The trace's <see cref="InputEvent"/>s read chunk by chunk, as the replay halves of the input sources take them.</summary>
public sealed class InputCursor : Replayvisor.Engine.Inputs.IInputStream
{
    private readonly EventCursor _cursor;

    public InputCursor(ChunkCache chunks) => _cursor = new EventCursor(chunks, e => e is InputEvent);

    public InputEvent? Peek => (InputEvent?)_cursor.Peek;

    public void Take()
    {
        _cursor.Take();
        AfterTake?.Invoke();
    }

    /// <summary>Called after each input is taken (a replay of a prefix ends once everything recorded is used).</summary>
    public Action? AfterTake { get; set; }
    public CursorPosition Position { get => _cursor.Position; set => _cursor.Position = value; }
}
