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

    /// <summary>Compares against the trace's <see cref="CheckEvent"/>s, read chunk by chunk.</summary>
    public Verifier(ChunkCache chunks) => _expected = new EventCursor(chunks, e => e is CheckEvent);

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
    public TraceEvent? NextExpected => _expected.Peek;

    /// <summary>Everything a snapshot of a replay needs to put the comparison back where it was.</summary>
    public VerifierState State
    {
        get => new(_expected.Position, Matched, First, Exhausted);
        set
        {
            _expected.Position = value.Expected;
            Matched = value.Matched;
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
        if (TruncatedAt is ulong end && actual.Icount >= end && (expected == null || !expected.Equals(actual)))
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
        _expected.Take();
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
        if (_expected.Peek is { } next && next.Icount <= upTo)
            First = new Divergence(icount, "the replay ended before producing this recorded event", next, null);
    }
}

/// <summary>A <see cref="Verifier"/>'s position and outcome so far, as plain data.</summary>
public readonly record struct VerifierState(CursorPosition Expected, long Matched, Divergence? First, bool Exhausted);
