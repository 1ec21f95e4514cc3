using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Trace;

namespace Replayvisor.Replay;

/// <summary>
/// Replays a host-clock recording: every time value comes from the trace, in order, and must be
/// asked for at the instruction count it was recorded at; anything else is a divergence.
/// </summary>
public sealed class TraceClock : IGuestClock
{
    private readonly Queue<TimeEvent> _values;
    private readonly Action<string> _diverged;
    private ulong _last;
    private ulong _lastIcount;

    public TraceClock(IEnumerable<TimeEvent> values, Action<string> diverged)
    {
        _values = new Queue<TimeEvent>(values);
        _diverged = diverged;
        uint sec = 0, nsec = 0;
        while (_values.Count > 0 && _values.Peek().Kind is TimeKind.WallclockSec or TimeKind.WallclockNsec)
        {
            var w = _values.Dequeue();
            if (w.Kind == TimeKind.WallclockSec) sec = (uint)w.Value; else nsec = (uint)w.Value;
        }
        BootWallclock = (sec, nsec);
    }

    public ulong TscHz => VirtualClock.FrequencyHz;
    public (uint Sec, uint Nsec) BootWallclock { get; }

    /// <summary>Recorded values not yet consumed.</summary>
    public int Remaining => _values.Count;

    private ulong Next(ulong icount, TimeKind kind)
    {
        if (_values.Count == 0)
        {
            _diverged($"the guest read the clock ({kind}) at instruction {icount} but the recording has no more time values");
            return _last;
        }
        var e = _values.Dequeue();
        if (e.Icount != icount || e.Kind != kind)
            _diverged($"the guest read the clock ({kind}) at instruction {icount}; the recording read {e.Kind} at instruction {e.Icount}");
        _last = e.Value;
        _lastIcount = icount;
        return e.Value;
    }

    public ulong SystemTimeNs(ulong icount) => Next(icount, TimeKind.SystemTimeNs);
    public ulong Tsc(ulong icount) => Next(icount, TimeKind.Tsc);
    public ulong IcountAt(ulong icount, ulong systemNs) => HostTimePolicy.IcountAt(icount, _lastIcount, _last, systemNs);

    public void Idle(ulong icount, ulong untilNs) { }
}
