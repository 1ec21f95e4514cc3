using Replayvisor.Engine.Time;
using Replayvisor.Engine.Trace;

namespace Replayvisor.Engine.Inputs;

/// <summary>
/// The host clock as an input (`record --clock host`), both halves: <see cref="RecordingClock"/>
/// reads the host and logs every value the guest sees as a <see cref="TimeEvent"/>;
/// <see cref="ReplayingClock"/> hands the logged values back at the same instruction counts.
/// Both decide when to look at the time again with <see cref="HostTimePolicy"/>.
/// </summary>
public static class HostTimePolicy
{
    /// <summary>Longest stretch run without reading the clock (bounds timer latency under a host clock).</summary>
    public const ulong MaxSlice = 2_000_000;

    /// <summary>Shortest stretch, so a late deadline does not degenerate into single-stepping.</summary>
    public const ulong MinSlice = 1_000;

    /// <summary>
    /// The instruction count at which to read the clock again while waiting for systemNs. It is a
    /// function of the last logged read (its value and instruction count) only, never of where the
    /// machine happens to stop, so extra stops (input polling, checkpoints) cannot move it.
    /// </summary>
    public static ulong IcountAt(ulong icount, ulong lastReadIcount, ulong lastReadNs, ulong systemNs)
    {
        if (systemNs <= lastReadNs) return icount;
        ulong wait = systemNs - lastReadNs; // about one instruction per nanosecond
        ulong at = lastReadIcount + Math.Clamp(wait, MinSlice, MaxSlice);
        return Math.Max(at, icount);
    }
}

/// <summary>What the recorder's clock needs from the host (src/Record supplies it; the engine never reads the host itself).</summary>
public interface IHostTime
{
    /// <summary>Nanoseconds of a monotonic host clock since the recording started.</summary>
    ulong MonotonicNs();

    /// <summary>The host's UTC time now, as seconds and nanoseconds since the Unix epoch.</summary>
    (uint Sec, uint Nsec) UtcNow();

    /// <summary>Waits in real time for at most about <paramref name="ns"/> nanoseconds (a second at most); true when woken early (input arrived, stop requested).</summary>
    bool Wait(ulong ns);
}

/// <summary>
/// Record half: Xen system time and the TSC follow the host's monotonic clock (at the 1 GHz
/// virtual frequency) and every value the guest sees is logged as a <see cref="TimeEvent"/>.
/// Idling really waits, until the deadline or until the host wakes it.
/// </summary>
public sealed class RecordingClock : IGuestClock
{
    private readonly IHostTime _host;
    private readonly Action<TraceEvent> _log;
    private ulong _last;
    private ulong _lastIcount;

    public RecordingClock(IHostTime host, Action<TraceEvent> log)
    {
        _host = host;
        _log = log;
        BootWallclock = host.UtcNow();
        _log(new TimeEvent(0, TimeKind.WallclockSec, BootWallclock.Sec));
        _log(new TimeEvent(0, TimeKind.WallclockNsec, BootWallclock.Nsec));
    }

    public ulong TscHz => VirtualClock.FrequencyHz;

    public (uint Sec, uint Nsec) BootWallclock { get; }

    private ulong Read(ulong icount, TimeKind kind)
    {
        ulong ns = _host.MonotonicNs();
        if (ns < _last) ns = _last; // monotonic even across rounding
        _last = ns;
        _lastIcount = icount;
        _log(new TimeEvent(icount, kind, ns));
        return ns;
    }

    public ulong SystemTimeNs(ulong icount) => Read(icount, TimeKind.SystemTimeNs);

    public ulong Tsc(ulong icount) => Read(icount, TimeKind.Tsc);

    /// <summary>
    /// One host read logged as both values (two events, as the two separate reads were), so the pair
    /// published in vcpu_time_info is consistent: with two reads the system time ran ahead of the TSC
    /// stamp by the host's delay between them, and a guest's pvclock time could pass Xen's NOW().
    /// </summary>
    public (ulong Tsc, ulong Ns) TscAndSystemTime(ulong icount)
    {
        ulong ns = Read(icount, TimeKind.Tsc);
        _log(new TimeEvent(icount, TimeKind.SystemTimeNs, ns));
        return (ns, ns);
    }

    public ulong IcountAt(ulong icount, ulong systemNs) => HostTimePolicy.IcountAt(icount, _lastIcount, _last, systemNs);

    /// <summary>Waits in real time until the deadline (ulong.MaxValue: until woken). Nothing is logged: the next read is.</summary>
    public void Idle(ulong icount, ulong untilNs)
    {
        while (true)
        {
            ulong now = _host.MonotonicNs();
            if (now >= untilNs || _host.Wait(untilNs - now)) return;
        }
    }
}

/// <summary>
/// Replay half: every time value comes from the recorded inputs, in order, and must be asked for
/// at the instruction count it was recorded at; anything else diverges.
/// </summary>
public sealed class ReplayingClock : IGuestClock
{
    private readonly InputQueue _queue;
    private readonly Action<string> _diverged;
    private ulong _last;
    private ulong _lastIcount;

    public ReplayingClock(InputQueue queue, Action<string> diverged)
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

    /// <summary>The last value handed out and its count (part of a replay snapshot).</summary>
    public (ulong Last, ulong LastIcount) State
    {
        get => (_last, _lastIcount);
        set => (_last, _lastIcount) = value;
    }

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
