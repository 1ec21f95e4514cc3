namespace Replayvisor.Engine.Xen;

/// <summary>Knobs of the Xen model that are part of a run's definition (recorded in the trace header).</summary>
public sealed record HypervisorOptions
{
    /// <summary>This domain's id; 0 for the initial domain, else 1 by default.</summary>
    public ushort? DomainId { get; init; }

    /// <summary>Default periodic VIRQ_TIMER period (docs/xen-abi.md §9: 100 Hz).</summary>
    public ulong PeriodicTimerNs { get; init; } = 10_000_000;

    /// <summary>How often vcpu_time_info is refreshed while the vcpu runs (Xen: about once a second).</summary>
    public ulong TimeRefreshNs { get; init; } = 1_000_000_000;

    /// <summary>Which Xen the guest is shown (Xen 3.1 or the compat ABI of Xen 4.19); null = by the kernel (<see cref="XenAbis.For"/>).</summary>
    public XenAbi? Abi { get; init; }

    /// <summary>Which console reaches the sink (display only: both are always observed and recorded).</summary>
    public ConsoleView Console { get; init; } = ConsoleView.Auto;

    /// <summary>vCPUs the domain is built with (d->max_vcpus), 1..<see cref="MaxVcpus"/>; vCPU 0 starts, the others wait for VCPUOP_initialise and up.</summary>
    public int VcpuCount { get; init; } = 1;

    /// <summary>The vcpu_info slots in shared_info (XEN_LEGACY_MAX_VCPUS on x86): the most vCPUs the model builds.</summary>
    public const int MaxVcpus = 32;
}

/// <summary>Counters for the machine's statistics.</summary>
public sealed class HypervisorStats
{
    public readonly long[] HypercallsByNumber = new long[64];
    public long UnknownHypercalls;
    public readonly long[] ExceptionsByVector = new long[256];
    public long Upcalls;
    public long Failsafes;

    /// <summary>Hypercall counts keyed by name (only the ones used).</summary>
    public IReadOnlyDictionary<string, long> HypercallsByName()
    {
        var d = new SortedDictionary<string, long>(StringComparer.Ordinal);
        for (int i = 0; i < 64; i++)
            if (HypercallsByNumber[i] != 0) d[Hypercalls.HypercallTable.NameOf(i)] = HypercallsByNumber[i];
        if (UnknownHypercalls != 0) d["unknown"] = UnknownHypercalls;
        return d;
    }

    public IReadOnlyDictionary<int, long> ExceptionsByVectorMap()
    {
        var d = new SortedDictionary<int, long>();
        for (int i = 0; i < 256; i++) if (ExceptionsByVector[i] != 0) d[i] = ExceptionsByVector[i];
        return d;
    }
}
