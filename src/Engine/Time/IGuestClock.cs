namespace Replayvisor.Engine.Time;

/// <summary>
/// The ONE place guest-visible time is read (docs/architecture.md, determinism contract 2 and 4): Xen system
/// time (ns since boot), the TSC for rdtsc and vcpu_time_info, and the boot wallclock. The Xen
/// model never reads time any other way. <see cref="VirtualClock"/> derives everything from the
/// instruction count; a recorder may supply a host-clock implementation that logs each value.
/// </summary>
public interface IGuestClock
{
    /// <summary>TSC frequency in Hz; vcpu_time_info's tsc_to_system_mul/tsc_shift are derived from it (docs/xen-abi.md §9).</summary>
    ulong TscHz { get; }

    /// <summary>Xen system time in ns at the given retired-instruction count.</summary>
    ulong SystemTimeNs(ulong icount);

    /// <summary>The TSC at the given retired-instruction count.</summary>
    ulong Tsc(ulong icount);

    /// <summary>
    /// The TSC and system time of one instant, for vcpu_time_info (Xen's update_vcpu_system_time
    /// publishes a tsc_timestamp and the system time of that same moment). The TSC is read first.
    /// </summary>
    (ulong Tsc, ulong Ns) TscAndSystemTime(ulong icount) => (Tsc(icount), SystemTimeNs(icount));

    /// <summary>The vCPU idles (SCHEDOP_block/poll) at <paramref name="icount"/> until system time reaches <paramref name="untilNs"/>.</summary>
    void Idle(ulong icount, ulong untilNs);

    /// <summary>The first instruction count, not below <paramref name="icount"/>, at which system time is at least <paramref name="systemNs"/>.</summary>
    ulong IcountAt(ulong icount, ulong systemNs);

    /// <summary>UTC at system time 0 (shared_info wc_sec/wc_nsec).</summary>
    (uint Sec, uint Nsec) BootWallclock { get; }
}
