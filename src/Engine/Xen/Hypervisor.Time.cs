namespace Replayvisor.Engine.Xen;

/// <summary>Xen system time, vcpu_time_info, and the per-vcpu timers (docs/xen-abi.md §9).</summary>
public sealed partial class Hypervisor
{
    public const int VirqTimer = 0, VirqDebug = 1, VirqConsole = 2;
    private ulong _nextTimeRefreshNs;

    /// <summary>set_time_scale (xen/arch/x86/time.c): halve while above 2e9, double while ≤ 1e9, mul = (1e9 &lt;&lt; 32) / tps.</summary>
    public static (uint Mul, sbyte Shift) TimeScale(ulong ticksPerSecond)
    {
        ulong tps64 = ticksPerSecond;
        int shift = 0;
        while (tps64 > 2_000_000_000ul) { tps64 >>= 1; shift--; }
        uint tps32 = (uint)tps64;
        while (tps32 <= 1_000_000_000u) { tps32 <<= 1; shift++; }
        uint mul = (uint)((1_000_000_000ul << 32) / tps32);
        return (mul, (sbyte)shift);
    }

    /// <summary>update_vcpu_system_time: a consistent (tsc, system time) pair under the version protocol, for every initialised vCPU.</summary>
    public void UpdateVcpuTime() => UpdateVcpuTime(null);

    /// <summary>As <see cref="UpdateVcpuTime()"/>, or for one vCPU only, initialised or not (force_update_vcpu_system_time).</summary>
    internal void UpdateVcpuTime(VcpuState? only)
    {
        var (mul, shift) = TimeScale(Clock.TscHz);
        ulong icount = Cpu.Icount;
        var (tsc, ns) = Clock.TscAndSystemTime(icount);
        foreach (var v in Vcpus)
            if (only == null ? v.Initialised : v == only) SharedInfo.WriteTime(v.Id, tsc, ns, mul, shift);
    }

    /// <summary>The earliest system time at which a timer (or the time refresh) needs the machine's attention.</summary>
    public ulong NextDeadlineNs()
    {
        ulong d = _nextTimeRefreshNs;
        foreach (var v in Vcpus)
        {
            if (!v.Up) continue;
            if (v.SingleshotNs != 0) d = Math.Min(d, v.SingleshotNs);
            if (v.PeriodNs != 0 && !v.Blocked) d = Math.Min(d, v.PeriodicNextNs);
            if ((v.Polling || Xen4) && v.PollTimeoutNs != 0) d = Math.Min(d, v.PollTimeoutNs);
        }
        return d;
    }

    /// <summary>The earliest deadline that can wake a blocked vcpu (the periodic timer is stopped while blocked), or 0.</summary>
    public ulong NextWakeDeadlineNs()
    {
        ulong d = ulong.MaxValue;
        foreach (var v in Vcpus)
        {
            if (!v.Up) continue;
            if (v.SingleshotNs != 0 && v.VirqPort[VirqTimer] != 0) d = Math.Min(d, v.SingleshotNs);
            if ((v.Polling || Xen4) && v.PollTimeoutNs != 0) d = Math.Min(d, v.PollTimeoutNs);
        }
        return d == ulong.MaxValue ? 0 : d;
    }

    /// <summary>Fires every timer whose deadline has passed: VIRQ_TIMER and poll timeouts of every vCPU that is up, the periodic time refresh.</summary>
    public void RunTimers()
    {
        ulong now = NowNs;
        foreach (var v in Vcpus)
        {
            if (!v.Up) continue;
            if (v.SingleshotNs != 0 && now >= v.SingleshotNs)
            {
                v.SingleshotNs = 0;
                Events.RaiseVirq(v.Id, VirqTimer);
            }
            // vcpu_periodic_timer_work: missed periods collapse into one event; the next is a period from now.
            if (v.PeriodNs != 0 && !v.Blocked && now >= v.PeriodicNextNs)
            {
                Events.RaiseVirq(v.Id, VirqTimer);
                v.PeriodicLastNs = now;
            }
            if (Xen4 && v.PollTimeoutNs != 0 && now >= v.PollTimeoutNs)
            {
                // poll_timer_fn: the timer stays armed after another wake; it unblocks only a vCPU still in poll_mask.
                v.PollTimeoutNs = 0;
                if (v.Polling)
                {
                    v.Polling = false;
                    v.PollEvtchn = 0; // read only while in poll_mask: cleared with it
                    Events.Unblock(v);
                }
            }
            else if (v.Polling && v.PollTimeoutNs != 0 && now >= v.PollTimeoutNs)
            {
                v.Polling = false;
                v.Blocked = false;
                v.PollTimeoutNs = 0;
            }
        }
        if (now >= _nextTimeRefreshNs)
        {
            UpdateVcpuTime();
            _nextTimeRefreshNs = now + Options.TimeRefreshNs;
        }
        SyncRunstates();
    }

    /// <summary>The vcpu runs again after block/poll or a context switch: Xen's schedule-in refreshes time and restarts the periodic timer.</summary>
    public void ScheduleIn()
    {
        UpdateVcpuTime();
        var v = Vcpu;
        ulong now = NowNs;
        if (v.PeriodNs != 0 && now > v.PeriodicNextNs)
        {
            Events.RaiseVirq(v.Id, VirqTimer);
            v.PeriodicLastNs = now;
        }
        Console.Poll();
        DeliverPendingEvents();
    }

    /// <summary>set_timer_op / the singleshot timer (§9): 0 cancels; negative or more than 2^50 ns ahead → now + 100 ms.</summary>
    internal void SetSingleshot(ulong timeout)
    {
        ulong now = NowNs;
        if (timeout == 0) { Vcpu.SingleshotNs = 0; return; }
        long offset = (long)(timeout - now);
        if ((long)timeout < 0 || (offset > 0 && (offset >> 50) != 0)) timeout = now + 100_000_000;
        // A deadline already past fires at the next check (at once: the machine runs timers before resuming).
        Vcpu.SingleshotNs = Math.Max(timeout, 1);
    }
}
