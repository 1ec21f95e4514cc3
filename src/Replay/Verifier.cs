using System.Runtime.CompilerServices;
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
    public Verifier(ChunkCache chunks) => _expected = new EventCursor(chunks, inputs: false);

    public Divergence? First { get; private set; }

    /// <summary>
    /// For a trace that ends early (killed recorder, damage): true once every recorded event, checks
    /// and inputs alike, has been used. An event produced after that lies beyond the recording and
    /// ends the comparison instead of diverging (docs/record-replay.md "Prefixes").
    /// </summary>
    public Func<bool>? RecordingUsedUp { get; init; }

    /// <summary>Called after each matched event (the replay checks whether a prefix has been used up).</summary>
    public Action? OnMatch { get; init; }

    /// <summary>True once an event beyond the end of a prefix was produced.</summary>
    public bool Exhausted { get; private set; }
    public long Matched { get; private set; }
    public TraceEvent? NextExpected => _expected.Peek;

    /// <summary>True when every recorded check event has been matched.</summary>
    public bool AtEnd => _expected.AtEnd;

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

    /// <summary>
    /// The fast path of <see cref="Observe"/> for a hypercall with no multicall entries and no
    /// guest-memory bytes (<see cref="ChunkEvents.HypercallEquals"/>): true when it matched the next
    /// recorded event, which is then taken as <see cref="Observe"/> would. False when that is not
    /// known without the event objects: nothing changed, and the caller observes the event.
    /// </summary>
    public bool TryMatchHypercall(ulong icount, int vcpu, int number, ReadOnlySpan<uint> args, long result, ulong digest, uint site)
    {
        if (!TakeIfHypercall(icount, vcpu, number, args, result, digest, site)) return false;
        OnMatch?.Invoke();
        return true;
    }

    /// <summary>As <see cref="TryMatchHypercall"/>, for an upcall (<see cref="ChunkEvents.UpcallEquals"/>).</summary>
    public bool TryMatchUpcall(ulong icount, int vcpu, ReadOnlySpan<uint> ports, uint eip, uint handler)
    {
        if (!TakeIfUpcall(icount, vcpu, ports, eip, handler)) return false;
        OnMatch?.Invoke();
        return true;
    }

    /// <summary>
    /// <see cref="TryMatchHypercall"/> without <see cref="OnMatch"/>: for the replayer's own plain
    /// match, which runs its after-match check itself (inlined into it, no delegate per event).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool TakeIfHypercall(ulong icount, int vcpu, int number, ReadOnlySpan<uint> args, long result, ulong digest, uint site)
    {
        if (First != null || Exhausted || !_expected.TryTakeHypercall(icount, vcpu, number, args, result, digest, site)) return false;
        Matched++;
        return true;
    }

    /// <summary>As <see cref="TakeIfHypercall"/>, for an upcall.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool TakeIfUpcall(ulong icount, int vcpu, ReadOnlySpan<uint> ports, uint eip, uint handler)
    {
        if (First != null || Exhausted || !_expected.TryTakeUpcall(icount, vcpu, ports, eip, handler)) return false;
        Matched++;
        return true;
    }

    private void TakeMatched()
    {
        _expected.Take();
        Matched++;
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
