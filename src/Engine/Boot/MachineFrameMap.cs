namespace Replayvisor.Engine.Boot;

/// <summary>
/// Where everything lives in machine memory. Xen's frames come first (a never-used frame 0, then
/// shared_info, the M2P table, spare frames), then the domain's frames in REVERSE pfn order, so
/// pfn and mfn differ everywhere and consecutive pfns are not consecutive mfns: a guest that uses
/// a pfn where an mfn belongs (or the other way round) breaks at once.
/// </summary>
public sealed class MachineFrameMap
{
    /// <summary>The most frames <see cref="Memory.PhysicalMemory"/> can hold (its array is capped below 2 GiB).</summary>
    public const uint MaxMachineFrames = (int.MaxValue & ~0xFFF) >> 12;

    public const uint NullFrameMfn = 0;
    public const uint SharedInfoMfn = 1;
    public const uint M2PFirstMfn = 2;

    private MachineFrameMap(uint nrPages, uint m2pFrames, uint spareFrames, uint paddingFrames)
    {
        NrPages = nrPages;
        M2PFrameCount = m2pFrames;
        SpareFirstMfn = M2PFirstMfn + m2pFrames;
        SpareCount = spareFrames;
        DomainBaseMfn = SpareFirstMfn + spareFrames + paddingFrames;
        TotalFrames = DomainBaseMfn + nrPages;
    }

    public uint NrPages { get; }
    public uint M2PFrameCount { get; }
    public uint SpareFirstMfn { get; }
    public uint SpareCount { get; }
    /// <summary>Lowest domain mfn; every mfn below it belongs to Xen.</summary>
    public uint DomainBaseMfn { get; }
    public uint TotalFrames { get; }

    public uint PfnToMfn(uint pfn) => DomainBaseMfn + NrPages - 1 - pfn;
    public bool IsXenOwned(uint mfn) => mfn < DomainBaseMfn;
    public bool IsDomainFrame(uint mfn) => mfn >= DomainBaseMfn && mfn < TotalFrames;

    /// <summary>M2P[mfn] (§3): the pfn for a domain frame, 0x55555555 (the debug fill) for any other.</summary>
    public uint MfnToPfn(uint mfn) => IsDomainFrame(mfn) ? DomainBaseMfn + NrPages - 1 - mfn : M2PInvalidEntry;

    public const uint M2PInvalidEntry = 0x55555555;

    public static MachineFrameMap Create(uint nrPages, uint spareFrames)
    {
        var map = Layout(nrPages, spareFrames);
        if (map.TotalFrames > MaxMachineFrames)
            throw new BootImageException(BootError.BadOptions,
                $"{nrPages / 256} MiB of guest memory is too much: with Xen's own frames the machine holds at most {MaxGuestMiB(spareFrames)} MiB of it");
        return map;
    }

    /// <summary>The most guest memory, in MiB, whose frames fit in the machine with Xen's (frame 0, shared_info, the M2P, <paramref name="spareFrames"/>).</summary>
    public static uint MaxGuestMiB(uint spareFrames)
    {
        uint mib = MaxMachineFrames / 256;
        while (Layout(mib * 256, spareFrames).TotalFrames > MaxMachineFrames) mib--;
        return mib;
    }

    private static MachineFrameMap Layout(uint nrPages, uint spareFrames)
    {
        // The M2P holds one u32 per machine frame, and its own size adds frames: iterate to a fixed point.
        uint m2p = 1;
        while (true)
        {
            ulong total = M2PFirstMfn + (ulong)m2p + spareFrames + 1 + nrPages;
            uint need = (uint)((total * 4 + XenLayout.PageSize - 1) / XenLayout.PageSize);
            if (need <= m2p) break;
            m2p = need;
        }
        // Make DomainBase + nrPages − 1 odd, so PfnToMfn(pfn) = pfn has no solution.
        uint basePlain = M2PFirstMfn + m2p + spareFrames;
        uint padding = ((ulong)basePlain + nrPages - 1) % 2 == 0 ? 1u : 0u;
        return new MachineFrameMap(nrPages, m2p, spareFrames, padding);
    }
}
