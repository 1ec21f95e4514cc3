using System.Runtime.CompilerServices;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Trace;

namespace Replayvisor.Engine.Inputs;

/// <summary>
/// Periodic checkpoints, both halves: every <c>interval</c> instructions the machine stops and its
/// state hash becomes a <see cref="CheckpointEvent"/>. The recorder writes the event; the replayer
/// checks it against the recording. The schedule is this one class, so both stop at the same counts.
/// </summary>
public sealed class Checkpoints
{
    private readonly ulong _interval;
    private readonly Action<CheckpointEvent> _emit;
    private ulong _last = ulong.MaxValue;

    /// <param name="interval">Instructions between checkpoints; 0 for none.</param>
    /// <param name="emit">Record: append to the trace. Replay: compare with the recording.</param>
    public Checkpoints(ulong interval, Action<CheckpointEvent> emit)
    {
        _interval = interval;
        _emit = emit;
    }

    /// <summary>The count of the last checkpoint taken (part of a replay snapshot: the same count is not checked twice).</summary>
    public ulong Last
    {
        get => _last;
        set
        {
            _last = value;
            _answeredFrom = _answer = 0; // the memo of NextPoll depends on it
        }
    }

    /// <summary>
    /// The next count (≥ icount) at which a checkpoint is due; ulong.MaxValue when there are none.
    /// The run loop asks at every stop: an answer later than the count asked is kept, and it is the
    /// answer for every count from the one asked up to it (no multiple of the interval lies between,
    /// so no checkpoint is taken there and none changes the answer).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong NextPoll(ulong icount) =>
        icount - _answeredFrom < _answer - _answeredFrom ? _answer : NextPollAsked(icount);

    /// <summary>The memo of <see cref="NextPoll"/>: its answer for counts in [_answeredFrom, _answer).</summary>
    private ulong _answeredFrom, _answer;

    private ulong NextPollAsked(ulong icount)
    {
        ulong next = NextPollComputed(icount);
        if (next > icount) (_answeredFrom, _answer) = (icount, next);
        return next;
    }

    private ulong NextPollComputed(ulong icount)
    {
        if (_interval == 0) return ulong.MaxValue;
        ulong multiple = MultipleAtOrAfter(icount);
        return multiple == icount && _last != icount ? icount : multiple + (multiple == icount ? _interval : 0);
    }

    /// <summary>Takes the checkpoint due at the machine's count, once.</summary>
    public void Poll(XenMachine machine)
    {
        ulong icount = machine.Icount;
        if (_interval == 0 || NextPoll(icount) != icount) return; // due: the next poll is now
        _last = icount;
        _emit(new CheckpointEvent(icount, machine.StateHash()));
    }

    /// <summary>The last value of <see cref="MultipleAtOrAfter"/>: the run loop asks at every stop, mostly between the same two multiples.</summary>
    private ulong _multiple;

    /// <summary>
    /// The smallest multiple of the interval that is ≥ <paramref name="icount"/> (wrapping past
    /// ulong.MaxValue as the division did). Divides only when icount has left the interval below
    /// the last answer (a replay that seeks backwards may ask for an earlier count).
    /// </summary>
    private ulong MultipleAtOrAfter(ulong icount)
    {
        ulong m = _multiple;
        if (icount <= m && m - icount < _interval) return m;
        m = icount / _interval * _interval;
        if (m == icount) return _multiple = m;
        m += _interval;
        if (m > icount) _multiple = m; // not kept when it wrapped: the next ask divides again
        return m;
    }
}
