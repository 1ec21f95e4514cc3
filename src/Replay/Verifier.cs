using Replayvisor.Engine.Trace;

namespace Replayvisor.Replay;

/// <summary>The first point where a replay and its recording part ways.</summary>
public sealed record Divergence(ulong Icount, string What, TraceEvent? Expected, TraceEvent? Actual);

/// <summary>
/// Compares every event the replay produces (hypercalls with results, upcalls, exceptions,
/// failsafe callbacks, console output, shutdown, checkpoints) with the recording, in order.
/// </summary>
public sealed class Verifier
{
    private readonly List<TraceEvent> _expected;
    private int _next;

    public Verifier(IEnumerable<TraceEvent> expected) => _expected = expected.ToList();

    public Divergence? First { get; private set; }

    /// <summary>
    /// For a trace whose recorder was killed: the count of its last recorded event. Events the
    /// replay produces at or after it may simply not have been flushed, so they end the
    /// comparison instead of diverging.
    /// </summary>
    public ulong? TruncatedAt { get; init; }

    /// <summary>True once a truncated trace's recorded events are used up.</summary>
    public bool Exhausted { get; private set; }
    public long Matched { get; private set; }
    public int Remaining => _expected.Count - _next;
    public TraceEvent? NextExpected => _next < _expected.Count ? _expected[_next] : null;

    /// <summary>Called for each produced event; records the first mismatch and returns false from then on.</summary>
    public bool Observe(TraceEvent actual)
    {
        if (First != null) return false;
        if (Exhausted) return true;
        if (TruncatedAt is ulong end && actual.Icount >= end && (_next >= _expected.Count || !_expected[_next].Equals(actual)))
        {
            Exhausted = true;
            return true;
        }
        if (_next >= _expected.Count)
        {
            First = new Divergence(actual.Icount, "the replay produced an event the recording does not have", null, actual);
            return false;
        }
        var expected = _expected[_next];
        if (!expected.Equals(actual))
        {
            First = new Divergence(Math.Min(expected.Icount, actual.Icount), "the replay produced a different event", expected, actual);
            return false;
        }
        _next++;
        Matched++;
        return true;
    }

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
        if (_next < _expected.Count && _expected[_next].Icount <= upTo)
            First = new Divergence(icount, "the replay ended before producing this recorded event", _expected[_next], null);
    }
}
