using System.Diagnostics;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Trace;
using Replayvisor.Engine.Time;

namespace Replayvisor.Record;

/// <summary>
/// `record --clock host`: Xen system time and the TSC follow the host's monotonic clock (scaled to
/// the 1 GHz virtual frequency) and every value the guest sees is logged as a <see cref="TimeEvent"/>.
/// Idling really waits, until the deadline or until <see cref="Wake"/> (console input arrived).
/// </summary>
public sealed class HostClock : IGuestClock, IDisposable
{
    private readonly Stopwatch _sw = Stopwatch.StartNew();
    private readonly Action<TraceEvent> _log;
    private readonly ManualResetEventSlim _wake = new(false);
    private ulong _last;
    private ulong _lastIcount;

    public HostClock(Action<TraceEvent> log)
    {
        _log = log;
        var utc = DateTimeOffset.UtcNow;
        BootWallclock = ((uint)utc.ToUnixTimeSeconds(), (uint)(utc.Ticks % TimeSpan.TicksPerSecond * 100));
        _log(new TimeEvent(0, TimeKind.WallclockSec, BootWallclock.Sec));
        _log(new TimeEvent(0, TimeKind.WallclockNsec, BootWallclock.Nsec));
    }

    public ulong TscHz => VirtualClock.FrequencyHz;

    public (uint Sec, uint Nsec) BootWallclock { get; }

    private ulong ReadHost()
    {
        ulong ns = (ulong)(_sw.ElapsedTicks * (1_000_000_000.0 / Stopwatch.Frequency));
        if (ns < _last) ns = _last; // monotonic even across rounding
        _last = ns;
        return ns;
    }

    public ulong SystemTimeNs(ulong icount)
    {
        ulong ns = ReadHost();
        _lastIcount = icount;
        _log(new TimeEvent(icount, TimeKind.SystemTimeNs, ns));
        return ns;
    }

    public ulong Tsc(ulong icount)
    {
        ulong ns = ReadHost();
        _lastIcount = icount;
        _log(new TimeEvent(icount, TimeKind.Tsc, ns));
        return ns;
    }

    public ulong IcountAt(ulong icount, ulong systemNs) => HostTimePolicy.IcountAt(icount, _lastIcount, _last, systemNs);

    /// <summary>Waits in real time until the deadline (ulong.MaxValue: until woken).</summary>
    public void Idle(ulong icount, ulong untilNs)
    {
        while (true)
        {
            ulong now = (ulong)(_sw.ElapsedTicks * (1_000_000_000.0 / Stopwatch.Frequency));
            if (now >= untilNs) return;
            ulong waitNs = untilNs - now;
            int ms = waitNs >= 1_000_000_000 ? 1000 : (int)Math.Max(1, waitNs / 1_000_000);
            if (_wake.Wait(ms)) { _wake.Reset(); return; }
        }
    }

    /// <summary>Ends an idle wait early (an input arrived).</summary>
    public void Wake() => _wake.Set();

    public void Dispose() => _wake.Dispose();
}
