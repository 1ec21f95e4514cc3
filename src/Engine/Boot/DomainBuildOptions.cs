namespace Replayvisor.Engine.Boot;

/// <summary>What the user asks of the domain builder.</summary>
public sealed record DomainBuildOptions
{
    /// <summary>Guest memory; nr_pages = MiB × 256.</summary>
    public required uint MemoryMiB { get; init; }

    /// <summary>start_info.cmd_line (at most 1023 bytes, §4.1).</summary>
    public string CommandLine { get; init; } = "";

    /// <summary>Build as the initial domain: start_info.flags = SIF_PRIVILEGED|SIF_INITDOMAIN (§4.1). The domU layout is kept.</summary>
    public bool InitialDomain { get; init; }

    /// <summary>Free Xen-owned machine frames left for the hypervisor model (for example the L1s mapping the M2P).</summary>
    public uint SpareXenFrames { get; init; } = DefaultSpareXenFrames;

    public const uint DefaultSpareXenFrames = 64;
}
