using Replayvisor.Engine.Trace;
using Replayvisor.Replay.Streaming;

namespace Replayvisor.Replay;

/// <summary>The first point where a replay and its recording part ways.</summary>
public sealed record Divergence(ulong Icount, string What, TraceEvent? Expected, TraceEvent? Actual);

/// <summary>
/// Compares every event the replay produces (hypercalls with results, upcalls, exceptions,
/// failsafe callbacks, console output, shutdown, checkpoints) with the recording, in order.
/// </summary>
public sealed class Verifier
{
    private readonly EventCursor _expected;
    private Divergence? _first;
    private bool _exhausted;
    private bool _plainAllowed = true;
    private readonly Action? _onMatch;

    /// <summary>Compares against the trace's <see cref="CheckEvent"/>s, read chunk by chunk.</summary>
    public Verifier(ChunkCache chunks)
    {
        _expected = new EventCursor(chunks, inputs: false);
        Columns.Enabled = true;
    }

    public Divergence? First
    {
        get => _first;
        private set
        {
            _first = value;
            UpdateColumns();
        }
    }

    /// <summary>
    /// For a trace that ends early (killed recorder, damage): true once every recorded event, checks
    /// and inputs alike, has been used. An event produced after that lies beyond the recording and
    /// ends the comparison instead of diverging (docs/record-replay.md "Prefixes").
    /// </summary>
    public Func<bool>? RecordingUsedUp { get; init; }

    /// <summary>
    /// Called after each matched event (the replay checks whether a prefix has been used up); after a
    /// match in <see cref="Columns"/> only when it took the chunk's last check (before that, the next
    /// check is held and nothing is used up).
    /// </summary>
    public Action? OnMatch
    {
        get => _onMatch;
        init
        {
            _onMatch = value;
            Columns.Left = value;
        }
    }

    /// <summary>True once an event beyond the end of a prefix was produced.</summary>
    public bool Exhausted
    {
        get => _exhausted;
        private set
        {
            _exhausted = value;
            UpdateColumns();
        }
    }

    /// <summary>Events matched so far (the checks cursor's taken events: every match takes one, and only a match does).</summary>
    public long Matched => _expected.Taken;
    public TraceEvent? NextExpected => _expected.Peek;

    /// <summary>True when every recorded check event has been matched.</summary>
    public bool AtEnd => _expected.AtEnd;

    /// <summary>
    /// Where produced plain hypercalls and upcalls are compared with the recording's columns and taken
    /// (the replay's observer calls it directly: <see cref="Engine.Session.TraceObserver.Expected"/>); a
    /// match there is a match here, counted in <see cref="Matched"/>. Enabled while <see cref="PlainAllowed"/>,
    /// no divergence is known and the comparison is not <see cref="Exhausted"/>: otherwise every event comes
    /// to <see cref="Observe"/>.
    /// </summary>
    public ColumnCursor Columns => _expected.Columns;

    /// <summary>False while every produced event must come to <see cref="Observe"/> as an object (a step that stops at events or single-steps).</summary>
    public bool PlainAllowed
    {
        get => _plainAllowed;
        set
        {
            _plainAllowed = value;
            UpdateColumns();
        }
    }

    private void UpdateColumns() => Columns.Enabled = _plainAllowed && _first == null && !_exhausted;

    /// <summary>Everything a snapshot of a replay needs to put the comparison back where it was.</summary>
    public VerifierState State
    {
        get => new(_expected.Position, Matched, First, Exhausted);
        set
        {
            // Matched is the position's taken count (a state is only ever taken from a verifier, where they agree).
            _expected.Position = value.Expected;
            First = value.First;
            Exhausted = value.Exhausted;
        }
    }

    /// <summary>Called for each produced event; records the first mismatch and returns false from then on.</summary>
    public bool Observe(TraceEvent actual)
    {
        if (First != null) return false;
        if (Exhausted) return true;
        var expected = _expected.Peek;
        if (expected == null && RecordingUsedUp?.Invoke() == true)
        {
            Exhausted = true;
            return true;
        }
        if (expected == null)
        {
            First = new Divergence(actual.Icount, "the replay produced an event the recording does not have", null, actual);
            return false;
        }
        if (!expected.Equals(actual))
        {
            First = new Divergence(Math.Min(expected.Icount, actual.Icount), "the replay produced a different event", expected, actual);
            return false;
        }
        TakeMatched();
        return true;
    }

    private void TakeMatched()
    {
        _expected.Take();
        OnMatch?.Invoke();
    }

    /// <summary>The next recorded check event was found in a chunk already held (<see cref="EventCursor.NextHeld"/>): <see cref="AtEnd"/> is false, known without reading.</summary>
    public bool NextHeld => _expected.NextHeld;

    /// <summary>
    /// Records a divergence found outside event comparison (inputs, clock reads). For an input
    /// taken at the wrong count, <paramref name="input"/> is the recorded input: the report's
    /// expected event, with its recorded count, while <paramref name="icount"/> is where the replay took it.
    /// </summary>
    public void Fail(ulong icount, string what, InputEvent? input = null)
    {
        First ??= new Divergence(icount, what, (TraceEvent?)input ?? NextExpected, null);
    }

    /// <summary>At the end of the run: everything recorded must have been produced (up to <paramref name="upTo"/> for a partial replay).</summary>
    public void Finish(ulong icount, ulong upTo)
    {
        if (First != null) return;
        if (_expected.Peek is { } next && next.Icount <= upTo)
            First = new Divergence(icount, "the replay ended before producing this recorded event", next, null);
    }
}

/// <summary>A <see cref="Verifier"/>'s position and outcome so far, as plain data.</summary>
public readonly record struct VerifierState(CursorPosition Expected, long Matched, Divergence? First, bool Exhausted);
