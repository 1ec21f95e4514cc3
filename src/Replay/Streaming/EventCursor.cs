using System.Runtime.CompilerServices;
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

    public ChunkCache(TraceReader reader)
    {
        _reader = reader;
        ReadAhead(0); // the first chunks are read while the replay builds its machine
    }

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
    public IReadOnlyList<TraceEvent>? TryGet(int index) => Shared(TryGetForCursor(index));

    /// <summary><see cref="TryGet"/> for a cursor of this cache (<see cref="Follow"/>): the chunk's buffers go back to their pool once it is evicted and no cursor stands in it.</summary>
    internal IReadOnlyList<TraceEvent>? TryGetForCursor(int index)
    {
        if (index >= Math.Min(HeldChunks, ChunkCount))
        {
            if (index >= ChunkCount && _reader.Damage is { } scanDamage && Damage == null) Damage = scanDamage;
            return null;
        }
        try
        {
            return GetForCursor(index);
        }
        catch (TraceFormatException ex) when (ex.Error == TraceError.DamagedChunk)
        {
            Damage ??= ex;
            HeldChunks = Math.Min(HeldChunks, index);
            return null;
        }
    }

    /// <summary>
    /// The cursors reading this cache. A decoded chunk's rows and values (ChunkEvents) go back to their
    /// pool (<see cref="ChunkEvents.ReturnBuffers"/>) when the chunk leaves <see cref="Capacity"/>'s recent
    /// chunks while no cursor stands in it; a chunk handed out by <see cref="Get"/> or <see cref="TryGet"/>
    /// is never given back (its holder may read it any time).
    /// </summary>
    private readonly List<EventCursor> _cursors = [];
    private readonly HashSet<IReadOnlyList<TraceEvent>> _shared = new(ReferenceEqualityComparer.Instance);

    internal void Follow(EventCursor cursor) => _cursors.Add(cursor);

    private IReadOnlyList<TraceEvent>? Shared(IReadOnlyList<TraceEvent>? events)
    {
        if (events is ChunkEvents) _shared.Add(events);
        return events;
    }

    /// <summary>Gives an evicted chunk's buffers back, unless a cursor stands in it or it was handed out.</summary>
    private void Evicted(IReadOnlyList<TraceEvent> events)
    {
        if (events is not ChunkEvents chunk || _shared.Remove(chunk)) return;
        foreach (var cursor in _cursors)
            if (cursor.Holds(chunk)) return;
        chunk.ReturnBuffers();
        ChunksGivenBack++;
    }

    /// <summary>Decoded chunks whose rows and values went back to their pool (evicted, or held at <see cref="Release"/>).</summary>
    public long ChunksGivenBack { get; private set; }

    /// <summary>
    /// For the end of a replay (ReplaySession): gives the buffers of every chunk still held back to their
    /// pool (a chunk handed out by <see cref="Get"/> or <see cref="TryGet"/> excepted) and drops the reads
    /// not started. Without it the last few chunks of each replay were left to the garbage collector
    /// (docs/time-travel.md "Streaming"). The cursors stand in no chunk afterwards, and any read of the
    /// cache throws <see cref="ObjectDisposedException"/>.
    /// </summary>
    public void Release()
    {
        _released = true;
        foreach (var read in _reading.Values) read.Drop();
        _reading.Clear();
        foreach (var cursor in _cursors) cursor.LetGo();
        _cursors.Clear();
        foreach (var (_, events) in _recent) Evicted(events);
        foreach (var events in _ahead.Values) Evicted(events);
        _recent.Clear();
        _ahead.Clear();
    }

    private bool _released;

    /// <summary>
    /// How many inputs chunk <paramref name="index"/> holds, remembered once known (a decoded chunk
    /// tells it; otherwise the chunk is read and checked: decoded and kept for <see cref="Get"/>
    /// while fewer than <see cref="AheadCapacity"/> are, else checked without keeping its events,
    /// TraceReader.ReadChunkInputCount); null where <see cref="TryGet"/> gives null, with the same damage recorded.
    /// </summary>
    public int? InputsIn(int index)
    {
        ObjectDisposedException.ThrowIf(_released, this);
        if (index >= Math.Min(HeldChunks, ChunkCount))
        {
            TryGetForCursor(index); // null here: records the damage that ended the scan, as for a cursor reaching the end
            return null;
        }
        _inputCounts ??= Enumerable.Repeat(-1, ChunkCount).ToArray();
        if (_inputCounts[index] >= 0) return _inputCounts[index];
        foreach (var (i, events) in _recent)
            if (i == index && events is ChunkEvents c) return _inputCounts[index] = c.InputCount;
        try
        {
            if (_ahead.Count >= AheadCapacity)
            {
                ChunksRead++;
                return _inputCounts[index] = _reader.ReadChunkInputCount(_reader.Index[index]);
            }
            var events = Read(index);
            _ahead[index] = events;
            return _inputCounts[index] = events is ChunkEvents c ? c.InputCount : events.Count(e => e is InputEvent);
        }
        catch (TraceFormatException ex) when (ex.Error == TraceError.DamagedChunk)
        {
            Damage ??= ex;
            HeldChunks = Math.Min(HeldChunks, index);
            return null;
        }
    }

    /// <summary>
    /// True when <see cref="InputsIn"/> would answer for chunk <paramref name="index"/> without waiting
    /// for a read or reading on the calling thread: its count is known, it is held decoded, its read on
    /// the chunk reader thread has finished, or it lies past the held events. Otherwise false, and the chunk is
    /// set reading if it is not (so a later ask finds it ready). Reads, checks and damage are as ever:
    /// the answer only says whether asking now would wait.
    /// </summary>
    public bool InputsReady(int index)
    {
        ObjectDisposedException.ThrowIf(_released, this);
        if (index >= Math.Min(HeldChunks, ChunkCount) || (_inputCounts != null && _inputCounts[index] >= 0) || _ahead.ContainsKey(index)) return true;
        foreach (var (i, events) in _recent)
            if (i == index && events is ChunkEvents) return true;
        if (_ahead.Count >= AheadCapacity) return false; // InputsIn would check it on the calling thread
        if (_reading.TryGetValue(index, out var read)) return read.IsCompleted;
        _reading[index] = ChunkReads.Start(_reader, _reader.Index[index]);
        return false;
    }

    /// <summary>Event chunks read from the trace so far (decompressed, checked and decoded), counting each time one is.</summary>
    public long ChunksRead { get; private set; }

    /// <summary>
    /// Chunks being read on the chunk reader thread (<see cref="ChunkReads"/>) for <see cref="Read"/>: the
    /// next <see cref="ReadAheadDepth"/> after the last one read. Reading a chunk is the same work on any
    /// thread (TraceReader.ReadChunk: the file read is locked, the rest is pure), and its result, the
    /// events or the damage found, is taken only where the replay would have read it: damage is
    /// reported at the same point as ever.
    /// </summary>
    private readonly Dictionary<int, ChunkRead> _reading = [];

    /// <summary>How many chunks past the last one read are read ahead.</summary>
    public const int ReadAheadDepth = 4;

    /// <summary>Chunk <paramref name="index"/>'s events (read ahead, or now), and the next few set reading.</summary>
    private IReadOnlyList<TraceEvent> Read(int index)
    {
        ChunksRead++;
        IReadOnlyList<TraceEvent> events;
        try
        {
            // Result rethrows the read's own exception (a damaged chunk's TraceFormatException, with its offset).
            events = _reading.Remove(index, out var read) ? read.Result() : _reader.ReadChunk(_reader.Index[index]);
        }
        finally
        {
            ReadAhead(index + 1);
        }
        return events;
    }

    /// <summary>Starts reading chunks <paramref name="from"/> .. + <see cref="ReadAheadDepth"/> that are not read or being read; forgets reads outside that window (a seek).</summary>
    private void ReadAhead(int from)
    {
        int to = Math.Min(from + ReadAheadDepth, Math.Min(HeldChunks, ChunkCount));
        if (_reading.Count > 0)
            foreach (int stale in _reading.Keys.Where(k => k < from || k >= to).ToList())
                if (_reading.Remove(stale, out var read)) read.Drop();
        for (int i = from; i < to; i++)
        {
            if (_reading.ContainsKey(i) || _ahead.ContainsKey(i) || _recent.Exists(r => r.Index == i)) continue;
            _reading[i] = ChunkReads.Start(_reader, _reader.Index[i]);
        }
    }

    /// <summary>Per chunk, its input count once known (-1 before).</summary>
    private int[]? _inputCounts;

    /// <summary>
    /// Chunks decoded by <see cref="InputsIn"/> and not yet asked for by <see cref="Get"/>. The input
    /// cursor's look-ahead reads chunks before the checks cursor does (a trace without inputs, all of
    /// them at its first look); keeping the first <see cref="AheadCapacity"/> decodes them once, not twice.
    /// </summary>
    private readonly Dictionary<int, IReadOnlyList<TraceEvent>> _ahead = [];

    /// <summary>At most this many chunks decoded ahead (a compact chunk holds up to 4,096 events: a few MiB in all).</summary>
    public const int AheadCapacity = 32;

    /// <summary>The events of chunk <paramref name="index"/>; a damaged chunk throws its TraceFormatException (with the offset) when reached.</summary>
    public IReadOnlyList<TraceEvent> Get(int index) => Shared(GetForCursor(index))!;

    private IReadOnlyList<TraceEvent> GetForCursor(int index)
    {
        ObjectDisposedException.ThrowIf(_released, this);
        for (int i = 0; i < _recent.Count; i++)
            if (_recent[i].Index == index)
            {
                var hit = _recent[i];
                if (i != 0) { _recent.RemoveAt(i); _recent.Insert(0, hit); }
                return hit.Events;
            }
        if (!_ahead.Remove(index, out var events)) events = Read(index);
        if (_recent.Count == Capacity)
        {
            var evicted = _recent[Capacity - 1].Events;
            _recent.RemoveAt(Capacity - 1);
            Evicted(evicted);
        }
        _recent.Insert(0, (index, events));
        return events;
    }
}

/// <summary>Where a cursor stands: the chunk, the event within it, and how many selected events it has taken.</summary>
public readonly record struct CursorPosition(int Chunk, int Event, long Taken);

/// <summary>
/// A forward cursor over either the inputs or the checks of a trace (every event is one or the
/// other), in file order. It tells them apart without building events (<see cref="ChunkEvents.IsInput"/>),
/// so a replay can compare produced values with the recording's columns (<see cref="Columns"/>). Its
/// position is plain data, so a snapshot of a replay can carry it and a restore can put it back.
/// </summary>
public sealed class EventCursor
{
    private readonly ChunkCache _chunks;
    private readonly bool _inputs;
    private int _chunk;
    /// <summary>
    /// The event's index in its chunk (<c>_w.Index</c>), how many selected events have been taken, and
    /// the chunk holding the selected event at (_chunk, _w.Index) once found (<c>_w.At</c>; null when not
    /// looked for since the last move): kept in one object, which a replay matches produced events
    /// against directly (<see cref="Columns"/>).
    /// </summary>
    private readonly ColumnCursor _w = new();
    /// <summary>
    /// Chunk _chunk's events once read, so taking event after event does not ask the cache each time.
    /// Safe to keep: a cursor reads chunks in order, so one it has read lies before any damage found since.
    /// </summary>
    private IReadOnlyList<TraceEvent>? _current;
    private bool _atEnd;

    /// <param name="inputs">True: the <see cref="InputEvent"/>s; false: the <see cref="CheckEvent"/>s.</param>
    public EventCursor(ChunkCache chunks, bool inputs)
    {
        _chunks = chunks;
        _inputs = inputs;
        chunks.Follow(this);
    }

    /// <summary>Stands in no chunk any more, keeping its place (its cache is giving the chunks' buffers back: <see cref="ChunkCache.Release"/>).</summary>
    internal void LetGo() => Position = Position;

    /// <summary>The cursor stands in <paramref name="chunk"/> (reads it now or at its next move): its cache must not give the chunk's buffers back.</summary>
    internal bool Holds(ChunkEvents chunk) => ReferenceEquals(_current, chunk) || ReferenceEquals(_w.At, chunk);

    /// <summary>Selected events taken so far.</summary>
    public long Taken => _w.Taken;

    /// <summary>
    /// The cursor's place, shared: a replay's checks cursor compares produced plain hypercalls and upcalls
    /// there and takes them (<see cref="ColumnCursor.TakeHypercall"/>) while it is <see cref="ColumnCursor.Enabled"/>.
    /// </summary>
    public ColumnCursor Columns => _w;

    public CursorPosition Position
    {
        get => new(_chunk, _w.Index, _w.Taken);
        set
        {
            _chunk = value.Chunk;
            _w.Index = value.Event;
            _w.Taken = value.Taken;
            _w.At = null;
            _current = null;
            _atEnd = false;
        }
    }

    /// <summary>The next selected event, or null at the end of the trace.</summary>
    public TraceEvent? Peek => PeekAt(out var events, out int index) ? events[index] : null;

    /// <summary>Where the next selected event is (its chunk's events and its index there, without building it); false at the end of the trace.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool PeekAt(out IReadOnlyList<TraceEvent> events, out int index)
    {
        if (_w.At == null && !_atEnd) LookOn(wait: true);
        index = _w.Index;
        events = _w.At!; // read only when true is returned
        return _w.At != null;
    }

    /// <summary>
    /// Moves on to the next selected event (sets _w.At) or the end (_atEnd). With <paramref name="wait"/>
    /// false, a cursor over inputs stops instead at the first chunk whose input count is not known
    /// without waiting for its read (<see cref="ChunkCache.InputsReady"/>) and returns false, having
    /// passed only chunks without inputs, as a waiting look would have.
    /// </summary>
    private bool LookOn(bool wait)
    {
        // Damage ends the events (ChunkCache.TryGet): a replay verifies the ones before it.
        while (true)
        {
            // A cursor over inputs passes a chunk without any unread (ChunkCache.InputsIn: checked, not kept).
            if (_inputs && _current == null && _w.Index == 0)
            {
                if (!wait && !_chunks.InputsReady(_chunk)) return false;
                int? inputs = _chunks.InputsIn(_chunk);
                if (inputs == null) break;
                if (inputs == 0)
                {
                    _chunk++;
                    continue;
                }
            }
            if ((_current ??= _chunks.TryGetForCursor(_chunk)) is not { } chunk) break;
            if (chunk is ChunkEvents columns ? Find(columns) : Find(chunk))
            {
                _w.At = chunk;
                return true;
            }
            _chunk++;
            _w.Index = 0;
            _current = null;
        }
        _atEnd = true;
        return true;
    }

    /// <summary>
    /// For a cursor over inputs: true when no selected event lies at an instruction count below
    /// <paramref name="icount"/>, told without waiting for a chunk being read. The cursor looks on as
    /// far as it can without waiting (<see cref="LookOn"/>); stopped at a chunk still being read, it
    /// answers from that chunk's index entry: every held event of it and of the chunks after it is at
    /// or after its first count (TraceReader.ReadChunk finds a chunk that disagrees with its index
    /// entry damaged, and damage ends the events). False only means "not known without waiting".
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool NoneBefore(ulong icount) =>
        // The common case at a stop, inlined: still before the first count of the chunk it stands at the start of.
        (_w.At == null && !_atEnd && _current == null && _w.Index == 0 && _pendingChunk == _chunk && _pendingFirst >= icount) || LooksOnNoneBefore(icount);

    private bool LooksOnNoneBefore(ulong icount)
    {
        if (_w.At == null && !_atEnd)
        {
            // At the start of a chunk not looked at yet whose first count is not reached: no look needed
            // (it comes when a stop lies past that count, when the checks are about to read the chunk too).
            if (_current == null && _w.Index == 0 && PendingFirstIcount() >= icount) return true;
            if (!LookOn(wait: false)) return PendingFirstIcount() >= icount;
        }
        if (_atEnd) return true;
        var at = _w.At!;
        return (at is ChunkEvents c ? c.IcountAt(_w.Index) : at[_w.Index].Icount) >= icount;
    }

    /// <summary>
    /// Right after <see cref="NoneBefore"/> answered true: a count below which no selected event lies, as
    /// far as that answer knows without reading on: none at all at the end; the next one's count once it
    /// is found; at the start of a chunk not looked at yet, the chunk's first count (its index entry, as
    /// <see cref="NoneBefore"/> answers); 0 otherwise.
    /// </summary>
    internal ulong NoneBelow =>
        _atEnd ? ulong.MaxValue
        : _w.At is { } at ? (at is ChunkEvents c ? c.IcountAt(_w.Index) : at[_w.Index].Icount)
        : _current == null && _w.Index == 0 ? PendingFirstIcount() : 0;

    /// <summary>The chunk <see cref="NoneBefore"/> last stood at and its first count (asked at every stop: the index is not looked up each time).</summary>
    private int _pendingChunk = -1;
    private ulong _pendingFirst;

    /// <summary>The first instruction count of chunk _chunk from its index entry; 0 when it is not a held chunk (so the cursor looks on and meets the end or damage).</summary>
    private ulong PendingFirstIcount()
    {
        if (_pendingChunk != _chunk)
        {
            _pendingChunk = _chunk;
            _pendingFirst = _chunk < Math.Min(_chunks.HeldChunks, _chunks.ChunkCount) ? _chunks.Reader.Index[_chunk].FirstIcount : 0;
        }
        return _pendingFirst;
    }

    /// <summary>Moves the index to the next selected event of <paramref name="chunk"/> at or after it; false when there is none.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Find(ChunkEvents chunk) => (_w.Index = chunk.NextOfKind(_w.Index, _inputs)) < chunk.Count;

    private bool Find(IReadOnlyList<TraceEvent> chunk)
    {
        for (; _w.Index < chunk.Count; _w.Index++)
            if (chunk[_w.Index] is InputEvent == _inputs) return true;
        return false;
    }

    public bool AtEnd => !PeekAt(out _, out _);

    /// <summary>
    /// True when the next selected event is known without reading anything: found in a chunk
    /// already held, or the end already met. Asking <see cref="Peek"/> or <see cref="AtEnd"/> then
    /// reads no chunk and finds no damage.
    /// </summary>
    public bool NextKnown => _w.At != null || _atEnd;

    /// <summary>True when the cursor already met the end of its events (no chunk is read to know it; a new position forgets it).</summary>
    public bool KnownAtEnd => _atEnd;

    /// <summary>True when the next selected event was found in a chunk already held (so the cursor is not at the end), without reading.</summary>
    public bool NextHeld => _w.At != null;

    /// <summary>Moves past the event <see cref="Peek"/> returned.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Take()
    {
        if (!PeekAt(out _, out _)) return;
        Advance();
    }

    /// <summary>
    /// Moves past the event at (_chunk, index), which was found, and on to the next selected one of
    /// the same chunk, if any (no chunk is read: the next chunk is read when it is asked for, as before).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Advance()
    {
        var chunk = _w.At!;
        _w.Index++;
        _w.Taken++;
        if (!(chunk is ChunkEvents columns ? Find(columns) : Find(chunk))) _w.At = null;
    }
}

/// <summary>The trace's <see cref="InputEvent"/>s read chunk by chunk, as the replay halves of the input sources take them.</summary>
public sealed class InputCursor : Replayvisor.Engine.Inputs.IInputStream
{
    private readonly EventCursor _cursor;

    public InputCursor(ChunkCache chunks) => _cursor = new EventCursor(chunks, inputs: true);

    public InputEvent? Peek => (InputEvent?)_cursor.Peek;

    /// <summary>The next input (or the end) is known without reading a chunk (<see cref="EventCursor.NextKnown"/>).</summary>
    public bool NextKnown => _cursor.NextKnown;

    /// <summary>Every input has been taken, and that is known without reading (<see cref="EventCursor.KnownAtEnd"/>).</summary>
    public bool KnownAtEnd => _cursor.KnownAtEnd;

    /// <summary>
    /// True when no input lies before instruction <paramref name="icount"/>, known without waiting for a
    /// chunk being read (<see cref="EventCursor.NoneBefore"/>): a replay asks this at every stop before it
    /// asks <see cref="Peek"/>, so a trace without inputs is looked through while the guest runs.
    /// Asked twice per stop, it answers from <see cref="_noneBelow"/> (one compare) up to the count the
    /// cursor's last answer covers, and asks the cursor only past it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool NoInputBefore(ulong icount) => icount <= _noneBelow || NoInputBeforeAsked(icount);

    /// <summary>
    /// No input lies at a count below this: what the cursor's last true <see cref="EventCursor.NoneBefore"/>
    /// covers (<see cref="EventCursor.NoneBelow"/>). Moving on only takes inputs, whose successors lie at
    /// or after them, so it stays true until a new <see cref="Position"/>, which forgets it.
    /// </summary>
    private ulong _noneBelow;

    private bool NoInputBeforeAsked(ulong icount)
    {
        if (!_cursor.NoneBefore(icount)) return false;
        _noneBelow = Math.Max(icount, _cursor.NoneBelow);
        return true;
    }

    public void Take()
    {
        _cursor.Take();
        AfterTake?.Invoke();
    }

    /// <summary>Called after each input is taken (a replay of a prefix ends once everything recorded is used).</summary>
    public Action? AfterTake { get; set; }

    public CursorPosition Position
    {
        get => _cursor.Position;
        set
        {
            _cursor.Position = value;
            _noneBelow = 0;
        }
    }
}
