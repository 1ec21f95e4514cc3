using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Trace;

namespace Replayvisor.Replay;

/// <summary>
/// The recorded inputs (time values, console input, chaos delays) in file order. The clock and
/// the input source take from the same queue, so inputs reach the guest in exactly the order the
/// recorder produced them, even when several happen at one instruction count.
/// </summary>
public sealed class InputQueue
{
    private readonly List<TraceEvent> _events;
    private int _next;

    public InputQueue(IEnumerable<TraceEvent> events) => _events = events.ToList();

    public TraceEvent? Peek => _next < _events.Count ? _events[_next] : null;
    public int Remaining => _events.Count - _next;
    public void Take() => _next++;
}

/// <summary>Feeds a replay: recorded console input and chaos delays at their counts, checkpoints, and the --to stop.</summary>
public sealed class ReplayInputs : IRunInputs
{
    private readonly InputQueue _queue;
    private readonly ulong _checkpointInterval;
    private readonly Action<ulong> _checkpoint;
    private readonly ulong _stopAt;
    private readonly bool _chaos;
    private readonly Action<string> _diverged;
    private ulong _lastCheckpoint = ulong.MaxValue;

    /// <param name="stopAt">Where the replay ends; with <paramref name="stopThere"/> the run reports Stopped there, as an interrupted recording did.</param>
    public ReplayInputs(InputQueue queue, ulong checkpointInterval, Action<ulong> checkpoint, ulong stopAt, bool chaos, Action<string> diverged,
        Func<ulong> icount, bool stopThere)
    {
        _icount = icount;
        _stopThere = stopThere;
        _queue = queue;
        _checkpointInterval = checkpointInterval;
        _checkpoint = checkpoint;
        _stopAt = stopAt;
        _chaos = chaos;
        _diverged = diverged;
    }

    private readonly Func<ulong> _icount;
    private readonly bool _stopThere;

    public bool Diverged { get; set; }
    public bool StopRequested => Diverged || (_stopThere && _icount() >= _stopAt);

    public ulong NextPoll(ulong icount)
    {
        ulong next = _stopAt;
        if (_queue.Peek is ConsoleInputEvent c) next = Math.Min(next, Math.Max(c.Icount, icount));
        if (_checkpointInterval != 0)
        {
            ulong cp = icount % _checkpointInterval == 0 && _lastCheckpoint != icount
                ? icount : (icount / _checkpointInterval + 1) * _checkpointInterval;
            next = Math.Min(next, cp);
        }
        return next;
    }

    public bool Poll(XenMachine machine, bool blocked)
    {
        ulong icount = machine.Icount;
        if (_checkpointInterval != 0 && icount % _checkpointInterval == 0 && _lastCheckpoint != icount)
        {
            _lastCheckpoint = icount;
            _checkpoint(icount);
        }
        if (_queue.Peek is ConsoleInputEvent c && c.Icount == icount)
        {
            _queue.Take();
            machine.PushConsoleInput(c.Bytes.AsSpan());
            return true;
        }
        return false;
    }

    public bool WaitForInput(XenMachine machine)
    {
        if (_queue.Peek is ConsoleInputEvent c)
        {
            if (c.Icount != machine.Icount)
                _diverged($"the guest waits for input at instruction {machine.Icount}; the recording delivered input at {c.Icount}");
            _queue.Take();
            machine.PushConsoleInput(c.Bytes.AsSpan());
            return true;
        }
        return false;
    }

    public ulong TimerDelay(ulong icount)
    {
        if (!_chaos) return 0;
        if (_queue.Peek is AsyncEvent { Kind: AsyncKind.ChaosDelay } a)
        {
            _queue.Take();
            if (a.Icount != icount) _diverged($"a timer was armed at instruction {icount}; the recording armed it at {a.Icount}");
            return a.Arg;
        }
        _diverged($"a timer was armed at instruction {icount} but the recording has no chaos delay here (next input: {Describe(_queue.Peek)})");
        return 0;
    }

    private static string Describe(TraceEvent? e) => e == null ? "none" : $"{e.GetType().Name} at {e.Icount}";
}
