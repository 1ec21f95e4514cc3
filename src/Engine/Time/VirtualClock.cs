namespace Replayvisor.Engine.Time;

/// <summary>
/// The default deterministic clock. One retired instruction is one nanosecond of Xen system time,
/// and the TSC runs at 1 GHz in step with it (so vcpu_time_info gets tsc_shift = +1,
/// tsc_to_system_mul = 0x80000000, xen-abi.md §9). Idling (block/poll) advances time to the
/// wake-up deadline without retiring instructions: system time = icount + total idle time.
/// The wallclock at boot is a fixed epoch from the options.
/// </summary>
public sealed class VirtualClock : IGuestClock
{
    public const ulong FrequencyHz = 1_000_000_000;

    /// <summary>Default boot epoch: 2007-10-09 00:00:00 UTC (the Linux 2.6.23 release day).</summary>
    public const uint DefaultEpochSeconds = 1191888000;

    private ulong _idleNs;

    public VirtualClock(uint epochSeconds = DefaultEpochSeconds, uint epochNanoseconds = 0)
    {
        BootWallclock = (epochSeconds, epochNanoseconds);
    }

    public ulong TscHz => FrequencyHz;

    /// <summary>Total time spent idle so far (part of the machine state).</summary>
    public ulong IdleNs { get => _idleNs; set => _idleNs = value; }

    public ulong SystemTimeNs(ulong icount) => icount + _idleNs;

    public ulong Tsc(ulong icount) => SystemTimeNs(icount);

    public void Idle(ulong icount, ulong untilNs)
    {
        ulong now = SystemTimeNs(icount);
        if (untilNs > now) _idleNs += untilNs - now;
    }

    public ulong IcountAt(ulong icount, ulong systemNs)
    {
        ulong now = SystemTimeNs(icount);
        return systemNs <= now ? icount : icount + (systemNs - now);
    }

    public (uint Sec, uint Nsec) BootWallclock { get; }
}
