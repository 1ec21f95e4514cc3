using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Trace;
using Replayvisor.Engine.Time;

namespace Replayvisor.Replay;

/// <summary>
/// Replays a host-clock recording: every time value comes from the trace's input queue, in order,
/// and must be asked for at the instruction count it was recorded at; anything else diverges.
/// </summary>
public sealed class TraceClock : IGuestClock
{
    private readonly InputQueue _queue;
    private readonly Action<string> _diverged;
    private ulong _last;
    private ulong _lastIcount;

    public TraceClock(InputQueue queue, Action<string> diverged)
    {
        _queue = queue;
        _diverged = diverged;
        uint sec = 0, nsec = 0;
        while (_queue.Peek is TimeEvent { Kind: TimeKind.WallclockSec or TimeKind.WallclockNsec } w)
        {
            _queue.Take();
            if (w.Kind == TimeKind.WallclockSec) sec = (uint)w.Value; else nsec = (uint)w.Value;
        }
        BootWallclock = (sec, nsec);
    }

    public ulong TscHz => VirtualClock.FrequencyHz;
    public (uint Sec, uint Nsec) BootWallclock { get; }

    private ulong Next(ulong icount, TimeKind kind)
    {
        if (_queue.Peek is TimeEvent e && e.Kind == kind && e.Icount == icount)
        {
            _queue.Take();
            _last = e.Value;
            _lastIcount = icount;
            return e.Value;
        }
        var head = _queue.Peek;
        _diverged(head == null
            ? $"the guest read the clock ({kind}) at instruction {icount} but the recording has no more inputs"
            : $"the guest read the clock ({kind}) at instruction {icount}; the recording's next input is {head.GetType().Name} at instruction {head.Icount}");
        return _last;
    }

    public ulong SystemTimeNs(ulong icount) => Next(icount, TimeKind.SystemTimeNs);
    public ulong Tsc(ulong icount) => Next(icount, TimeKind.Tsc);
    public ulong IcountAt(ulong icount, ulong systemNs) => HostTimePolicy.IcountAt(icount, _lastIcount, _last, systemNs);

    /// <summary>Replay never waits: the recorded values already say how long the guest idled.</summary>
    public void Idle(ulong icount, ulong untilNs) { }
}
