namespace Replayvisor.Engine.Boot;

/// <summary>
/// The guest-virtual layout of a new domU (docs/xen-abi.md §7): regions packed page by page from the
/// kernel start, in order kernel [+ BSD symtab], (no initrd), p2m, start_info, xenstore, console,
/// page tables, boot stack; then the mapped range rounded up to 4 MB. pfn = (VA − VIRT_BASE) &gt;&gt; 12.
/// </summary>
public sealed record DomainVirtualLayout
{
    public const uint Page = XenLayout.PageSize;
    /// <summary>§7: at least 512 KB of mapped padding after the boot stack.</summary>
    public const uint PaddingBytes = 512 * 1024;
    public const uint MappingAlignment = 4 * 1024 * 1024;

    public required uint VirtBase { get; init; }
    public required uint KernelStart { get; init; }
    /// <summary>VA of the appended BSD symbol table (0 when none), right after the kernel (4-byte aligned, as libelf).</summary>
    public required uint SymtabStart { get; init; }
    public required uint SymtabSize { get; init; }
    /// <summary>End of kernel [+ symtab], rounded up to a page.</summary>
    public required uint KernelEnd { get; init; }
    public required uint P2mStart { get; init; }
    public required uint P2mPages { get; init; }
    public required uint StartInfo { get; init; }
    public required uint Xenstore { get; init; }
    public required uint Console { get; init; }
    public required uint PageTables { get; init; }
    public required uint NrPtFrames { get; init; }
    /// <summary>PAE: L2 frames after the L3 (including the extra one for L3 slot 3). Non-PAE: 1.</summary>
    public required uint L2Frames { get; init; }
    public required uint L1Frames { get; init; }
    /// <summary>PAE: the last L2 is the extra one for L3 slot 3 (the range ends below 0xC0000000).</summary>
    public required bool ExtraSlot3L2 { get; init; }
    public required uint BootStack { get; init; }
    /// <summary>End (exclusive) of the range the initial tables map; 4 MB aligned. A ulong: it may be 4 GB.</summary>
    public required ulong VirtPgtabEnd { get; init; }

    public uint BootStackTop => BootStack + Page;
    public uint MappedPages => (uint)((VirtPgtabEnd - VirtBase) / Page);
    public uint Pfn(uint va) => (va - VirtBase) / Page;
    public bool IsPageTablePfn(uint pfn) => pfn >= Pfn(PageTables) && pfn < Pfn(PageTables) + NrPtFrames;

    public static DomainVirtualLayout Compute(XenGuestInfo guest, uint nrPages, uint symtabSize)
    {
        ArgumentNullException.ThrowIfNull(guest);
        uint vb = guest.VirtBase;
        ulong kstart = guest.VirtKernelStart & ~(ulong)(Page - 1);
        ulong symtab = symtabSize == 0 ? 0 : (guest.VirtKernelEnd + 3ul) & ~3ul;
        ulong alloc = RoundUp(symtabSize == 0 ? guest.VirtKernelEnd : symtab + symtabSize, Page);
        ulong kernelEnd = alloc;
        ulong p2m = alloc; uint p2mPages = (uint)RoundUp((ulong)nrPages * 4, Page) / Page; alloc += (ulong)p2mPages * Page;
        ulong startInfo = alloc; alloc += Page;
        ulong store = alloc; alloc += Page;
        ulong console = alloc; alloc += Page;
        ulong pt = alloc;

        // nr_pt_frames: iterate until the tables cover the range that includes themselves (§7).
        bool pae = guest.IsPae;
        uint nrPt = 1;
        ulong end;
        (uint L2, uint L1, bool Extra) counts;
        while (true)
        {
            end = RoundUp(pt + (ulong)nrPt * Page + Page + PaddingBytes, MappingAlignment);
            counts = CountTables(vb, end, pae);
            uint need = 1 + (pae ? counts.L2 : 0) + counts.L1;
            if (need <= nrPt) break;
            nrPt = need;
        }
        ulong stack = pt + (ulong)nrPt * Page;

        var layout = guest.Layout;
        if (end > layout.HypervisorVirtStart)
            throw new BootImageException(BootError.DoesNotFit,
                $"the initial mapping 0x{vb:X}-0x{end:X} reaches HYPERVISOR_VIRT_START 0x{layout.HypervisorVirtStart:X}");
        ulong mappedPages = (end - vb) / Page;
        if (mappedPages > nrPages)
            throw new BootImageException(BootError.DoesNotFit,
                $"the kernel and boot regions need {(mappedPages + 255) / 256} MiB mapped from VIRT_BASE but the domain has {nrPages / 256} MiB");

        return new DomainVirtualLayout
        {
            VirtBase = vb, KernelStart = (uint)kstart, SymtabStart = (uint)symtab, SymtabSize = symtabSize,
            KernelEnd = (uint)kernelEnd, P2mStart = (uint)p2m, P2mPages = p2mPages, StartInfo = (uint)startInfo,
            Xenstore = (uint)store, Console = (uint)console, PageTables = (uint)pt, NrPtFrames = nrPt,
            L2Frames = pae ? counts.L2 : 1, L1Frames = counts.L1, ExtraSlot3L2 = counts.Extra,
            BootStack = (uint)stack, VirtPgtabEnd = end,
        };
    }

    /// <summary>
    /// Tables needed to map [start, end): non-PAE one L1 per 4 MB; PAE one L2 per 1 GB slot (plus one
    /// for L3 slot 3 when the range ends at or below 0xC0000000) and one L1 per 2 MB (§7).
    /// </summary>
    private static (uint L2, uint L1, bool Extra) CountTables(uint start, ulong end, bool pae)
    {
        ulong last = end - 1;
        if (!pae)
            return (1, (uint)((last >> 22) - (start >> 22) + 1), false);
        bool extra = end <= 0xC0000000;
        uint l2 = (uint)((last >> 30) - (start >> 30) + 1) + (extra ? 1u : 0u);
        return (l2, (uint)((last >> 21) - (start >> 21) + 1), extra);
    }

    private static ulong RoundUp(ulong v, ulong align) => (v + align - 1) & ~(align - 1);
}
