using Replayvisor.Engine.Boot;
using Replayvisor.Engine.State;

namespace Replayvisor.Engine.Xen.Mm;

/// <summary>
/// The memory state Xen keeps per vCPU (struct arch_vcpu: guest_table, the GDT frames of set_gdt,
/// the LDT of MMUEXT_SET_LDT, the kernel stack of stack_switch), parked while another vCPU runs.
/// Each parked context holds its own references (a root-type ref on the base, GDT-page refs).
/// </summary>
public sealed record MmVcpuContext
{
    public required uint BaseMfn { get; init; }
    public required uint[] GdtFrames { get; init; }
    public required uint GdtEntries { get; init; }
    public required uint LdtBase { get; init; }
    public required uint LdtEntries { get; init; }
    public required ushort KernelSs { get; init; }
    public required uint KernelSp { get; init; }

    public void WriteState(CanonicalWriter w)
    {
        ArgumentNullException.ThrowIfNull(w);
        w.Tag("mm-context");
        w.U32(BaseMfn);
        foreach (uint f in GdtFrames) w.U32(f);
        w.U32(GdtEntries); w.U32(LdtBase); w.U32(LdtEntries);
        w.U16(KernelSs); w.U32(KernelSp);
    }
}

public sealed partial class MemoryManager
{
    /// <summary>The running vCPU stops: its shadow LDT mappings are dropped (invalidate_shadow_ldt) and its state is parked.</summary>
    public MmVcpuContext ParkContext()
    {
        InvalidateShadowLdt();
        return new MmVcpuContext
        {
            BaseMfn = _baseMfn, GdtFrames = (uint[])_gdtFrames.Clone(), GdtEntries = _gdtEntries,
            LdtBase = _ldtBase, LdtEntries = _ldtEntries, KernelSs = KernelSs, KernelSp = KernelSp,
        };
    }

    /// <summary>A parked vCPU runs: its GDT frames are mapped, its LDT descriptor and kernel stack loaded, the TLB flushed.</summary>
    public void LoadContext(MmVcpuContext c)
    {
        ArgumentNullException.ThrowIfNull(c);
        InvalidateShadowLdt();
        _baseMfn = c.BaseMfn;
        _cpu.Cr3 = c.BaseMfn << 12;
        for (int i = 0; i < XenLayout.FirstReservedGdtPage; i++)
        {
            _gdtFrames[i] = c.GdtFrames[i];
            _xen.SetGdtPage(i, c.GdtFrames[i]);
        }
        _gdtEntries = c.GdtEntries;
        _ldtBase = c.LdtBase;
        _ldtEntries = c.LdtEntries;
        SetKernelStack(c.KernelSs, c.KernelSp);
        LoadLdt();
        _cpu.FlushTlb();
    }

    /// <summary>
    /// check_get_page_from_gfn + get_page_type(PGT_writable_page) of map_guest_area: a frame the
    /// domain does not own -EINVAL, one that cannot be writable (a page table, a GDT page) -EACCES.
    /// The reference is kept for as long as Xen maps the area (for the vcpu_info: for good).
    /// </summary>
    public long TakeWritableRef(ulong mfn)
    {
        if (!Frames.GetPage(mfn, FrameOwner.Domain)) return -Errno.EINVAL;
        if (Frames.GetType((uint)mfn, PageType.Writable)) return 0;
        Frames.PutPage((uint)mfn);
        return -Errno.EACCES;
    }

    /// <summary>
    /// The memory part of arch_set_info_guest for a vCPU being initialised (VCPUOP_initialise): the
    /// LDT (page aligned, ≤ 8192 entries, below the hypervisor), the GDT as set_gdt checks it, and
    /// the base table, which must take a root type. -EINVAL (nothing taken) if any check fails.
    /// </summary>
    public long PrepareContext(uint baseMfn, ReadOnlySpan<uint> gdtFrames, uint gdtEntries, uint ldtBase, uint ldtEntries,
        ushort kernelSs, uint kernelSp, out MmVcpuContext? context)
    {
        context = null;
        if ((ldtBase & 0xFFF) != 0 || ldtEntries > 8192 || !ArrayOk(ldtBase, ldtEntries, 8)) return -Errno.EINVAL;
        if (gdtEntries > XenLayout.FirstReservedGdtEntry) return -Errno.EINVAL;
        int pages = (int)((gdtEntries + 511) / 512);
        var frames = new uint[HypervisorArea.GdtPages];
        for (int i = 0; i < pages; i++)
        {
            frames[i] = gdtFrames[i];
            if (Frames.GetPageAndType(frames[i], FrameOwner.Domain, PageType.GdtPage)) continue;
            while (--i >= 0) Frames.PutPageAndType(frames[i]);
            return -Errno.EINVAL;
        }
        if (!Frames.GetPageAndType(baseMfn, FrameOwner.Domain, _fmt.RootType))
        {
            for (int i = 0; i < pages; i++) Frames.PutPageAndType(frames[i]);
            return -Errno.EINVAL;
        }
        context = new MmVcpuContext
        {
            BaseMfn = baseMfn, GdtFrames = frames, GdtEntries = gdtEntries,
            LdtBase = ldtBase, LdtEntries = ldtEntries, KernelSs = kernelSs, KernelSp = kernelSp,
        };
        return 0;
    }
}
