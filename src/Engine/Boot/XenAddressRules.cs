namespace Replayvisor.Engine.Boot;

/// <summary>
/// §6 address computations and checks: virt_offset, kstart/kend, entry and hypercall page inside
/// the kernel, VIRT_BASE ≤ kstart, and every segment inside [VIRT_BASE, HYPERVISOR_VIRT_START).
/// </summary>
internal static class XenAddressRules
{
    public static XenGuestInfo Apply(ElfImage elf, XenGuestParams p, XenLayout layout, IReadOnlyList<XenFeatureRequest> features)
    {
        if (p.PaddrOffset is not null && p.VirtBase is null)
            throw Layout("PADDR_OFFSET is set but VIRT_BASE is not");
        ulong virtBase = p.VirtBase ?? 0;
        // Default PADDR_OFFSET: 0 with notes, VIRT_BASE with the legacy string (§6).
        ulong paddrOffset = p.PaddrOffset ?? (p.Source == XenNoteSource.LegacyXenGuestString ? virtBase : 0);
        ulong virtOffset = unchecked(virtBase - paddrOffset);
        if (virtBase >= layout.HypervisorVirtStart)
            throw Layout($"VIRT_BASE 0x{virtBase:X} is not below HYPERVISOR_VIRT_START 0x{layout.HypervisorVirtStart:X}");

        var segments = LoadSegments(elf, virtOffset);
        ulong kstart = segments.Min(s => s.Start), kend = segments.Max(s => s.End);
        if (virtBase > kstart)
            throw Layout($"kernel start 0x{kstart:X} is below VIRT_BASE 0x{virtBase:X}");
        foreach (var s in segments)
            if (s.Start < virtBase || s.End > layout.HypervisorVirtStart)
                throw new BootImageException(BootError.SegmentOutOfRange,
                    $"segment 0x{s.Start:X}-0x{s.End:X} lies outside [VIRT_BASE 0x{virtBase:X}, HYPERVISOR_VIRT_START 0x{layout.HypervisorVirtStart:X}) of {layout.StartInfoMagic}");

        ulong entry = p.Entry ?? elf.Entry;
        if (entry < kstart || entry > kend)
            throw Layout($"entry 0x{entry:X} is outside the kernel 0x{kstart:X}-0x{kend:X}");

        ulong? hypercallPage = p.Source == XenNoteSource.LegacyXenGuestString
            ? (p.LegacyHypercallPageNumber is { } n ? unchecked((n << 12) + virtBase) : null) // a page number, §6
            : p.HypercallPage;
        if (hypercallPage is { } hp && (hp < kstart || hp >= kend || (hp & 0xFFF) != 0))
            throw new BootImageException(BootError.BadNoteValue,
                $"HYPERCALL_PAGE 0x{hp:X} is not a page-aligned address inside the kernel 0x{kstart:X}-0x{kend:X}");

        string pae = p.PaeMode ?? "";
        return new XenGuestInfo
        {
            Source = p.Source,
            GuestType = layout.GuestType,
            PaeExtendedCr3 = layout.IsPae,
            Entry = (uint)entry,
            HypercallPage = hypercallPage is { } h ? (uint)h : null,
            VirtBase = (uint)virtBase,
            PaddrOffset = (uint)paddrOffset,
            VirtKernelStart = (uint)kstart,
            VirtKernelEnd = (uint)kend,
            XenVersion = p.XenVersion!,
            GuestOs = p.GuestOs,
            GuestVersion = p.GuestVersion,
            Loader = p.Loader,
            PaeMode = pae.Length == 0 ? null : pae,
            Features = features,
            BsdSymtab = p.BsdSymtab,
            SuspendCancel = p.SuspendCancel,
            HvStartLow = p.HvStartLow,
            Notes = p.Notes,
            Segments = segments.Select(s => s.Segment).ToArray(),
        };
    }

    private readonly record struct Placed(XenLoadSegment Segment, ulong Start, ulong End);

    private static List<Placed> LoadSegments(ElfImage elf, ulong virtOffset)
    {
        var result = new List<Placed>();
        foreach (var ph in elf.ProgramHeaders)
        {
            if (ph.Type != Elf.PtLoad || ph.MemorySize == 0) continue;
            if (ph.FileSize > ph.MemorySize)
                throw new BootImageException(BootError.BadAddressLayout,
                    $"segment at p_paddr 0x{ph.PhysicalAddress:X} has p_filesz 0x{ph.FileSize:X} larger than p_memsz 0x{ph.MemorySize:X}");
            elf.Slice(ph.Offset, ph.FileSize, "PT_LOAD segment");
            // The kernel is placed by p_paddr, not p_vaddr (§6); 64-bit arithmetic as libelf, so a
            // p_paddr below PADDR_OFFSET lands far above 4 GB and fails the range check.
            ulong start = unchecked(ph.PhysicalAddress + virtOffset);
            ulong end = start > uint.MaxValue ? ulong.MaxValue : start + ph.MemorySize;
            result.Add(new Placed(new XenLoadSegment((uint)start, ph.Offset, ph.FileSize, ph.MemorySize), start, end));
        }
        if (result.Count == 0)
            throw new BootImageException(BootError.BadAddressLayout, "no loadable (PT_LOAD) segments");
        return result;
    }

    private static BootImageException Layout(string why) => new(BootError.BadAddressLayout, why);
}
