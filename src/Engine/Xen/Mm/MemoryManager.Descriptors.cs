using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Cpu;

namespace Replayvisor.Engine.Xen.Mm;

public sealed partial class MemoryManager
{
    /// <summary>
    /// set_gdt(frame_list*, entries) (docs/xen-abi.md §11): entries ≤ 7168 (-EINVAL), an unreadable list
    /// -EFAULT; every frame must take the GDT-page type (all 512 descriptors checked) or nothing
    /// changes (-EINVAL). On success the old frames are released and the local TLB is flushed.
    /// </summary>
    public long SetGdt(in HypercallArgs a)
    {
        uint list = a.A1, entries = a.A2;
        if (entries > XenLayout.FirstReservedGdtEntry) return -Errno.EINVAL;
        int pages = (int)((entries + 511) / 512);
        Span<uint> frames = stackalloc uint[HypervisorArea.GdtPages];
        for (int i = 0; i < pages; i++)
            if (!_guest.TryRead32(list + (uint)i * 4, out frames[i])) return -Errno.EFAULT;
        for (int i = 0; i < pages; i++)
        {
            if (Frames.GetPageAndType(frames[i], FrameOwner.Domain, PageType.GdtPage)) continue;
            while (--i >= 0) Frames.PutPageAndType(frames[i]);
            return -Errno.EINVAL;
        }
        DestroyGdt();
        _gdtEntries = entries;
        for (int i = 0; i < pages; i++)
        {
            _gdtFrames[i] = frames[i];
            _xen.SetGdtPage(i, frames[i]);
        }
        _cpu.FlushTlb();
        return 0;
    }

    private void DestroyGdt()
    {
        for (int i = 0; i < XenLayout.FirstReservedGdtPage; i++)
        {
            if (_gdtFrames[i] != 0) Frames.PutPageAndType(_gdtFrames[i]);
            _gdtFrames[i] = 0;
            _xen.SetGdtPage(i, 0);
        }
        _gdtEntries = 0;
    }

    /// <summary>Guest GDT frame i (0 if none).</summary>
    public uint GdtFrame(int i) => (uint)i < XenLayout.FirstReservedGdtPage ? _gdtFrames[i] : 0;

    /// <summary>
    /// update_descriptor(maddr_lo, maddr_hi, desc_lo, desc_hi) (docs/xen-abi.md §11): 8-byte aligned,
    /// owned frame, descriptor passing (and adjusted by) check_descriptor; a GDT/LDT frame keeps its
    /// type, any other frame must accept a writable type. -EINVAL otherwise.
    /// </summary>
    public long UpdateDescriptor(in HypercallArgs a)
    {
        ulong pa = HypercallArgs.Pair(a.A1, a.A2);
        ulong desc = HypercallArgs.Pair(a.A3, a.A4);
        ulong mfn64 = pa >> 12;
        if ((pa & 7) != 0 || !Frames.IsValid(mfn64) || !DescriptorCheck.Check(ref desc, _layout.GuestSegmentMax))
            return -Errno.EINVAL;
        if (!Frames.GetPage(mfn64, FrameOwner.Domain)) return -Errno.EINVAL;
        uint mfn = (uint)mfn64;
        var type = Frames.TypeOf(mfn) is PageType.GdtPage or PageType.LdtPage ? Frames.TypeOf(mfn) : PageType.Writable;
        long rc = -Errno.EINVAL;
        if (Frames.GetType(mfn, type))
        {
            _domain.Memory.Write64(pa, desc);
            Frames.PutType(mfn);
            rc = 0;
        }
        Frames.PutPage(mfn);
        return rc;
    }

    /// <summary>MMUEXT_SET_LDT: page-aligned base, ≤ 8192 entries, below HYPERVISOR_VIRT_START.</summary>
    private bool SetLdt(uint ptr, uint ents, ref bool reloadLdt)
    {
        if ((ptr & 0xFFF) != 0 || ents > 8192 || !ArrayOk(ptr, ents, 8)) return false;
        if (ents != _ldtEntries || ptr != _ldtBase)
        {
            InvalidateShadowLdt();
            _ldtBase = ptr;
            _ldtEntries = ents;
            reloadLdt = true;
        }
        return true;
    }

    /// <summary>load_LDT: Xen's LDT descriptor (GDT 0x1C09) over the shadow area, or a null LDTR.</summary>
    private void LoadLdt()
    {
        if (_ldtEntries == 0)
        {
            _xen.WriteReservedDescriptor(HypervisorArea.LdtDescIndex, 0);
            _cpu.Ldtr = SegmentCache.Null(0);
            return;
        }
        ulong d = HypervisorArea.SystemDescriptor(_xen.LdtVa, _ldtEntries * 8 - 1, 0x82);
        _xen.WriteReservedDescriptor(HypervisorArea.LdtDescIndex, d);
        _cpu.Ldtr = SegmentCache.FromDescriptor(HypervisorArea.LdtSelector, d);
    }

    /// <summary>invalidate_shadow_ldt: drops every lazily mapped LDT page (their LDT-type refs) and flushes.</summary>
    private void InvalidateShadowLdt()
    {
        if (_ldtMapped == 0) return;
        _ldtMapped = 0;
        for (int i = 0; i < HypervisorArea.LdtPages; i++)
        {
            ulong e = _xen.LdtEntry(i);
            if ((e & Pte.P) == 0) continue;
            _xen.SetLdtEntry(i, 0);
            Frames.PutPageAndType((uint)_fmt.Mfn(e));
        }
        _cpu.FlushTlb();
    }

    /// <summary>
    /// map_ldt_shadow_page: the guest PTE for ldt_base + page*4096 must be present and its frame
    /// must take the LDT-page type; mapped into the shadow area with the guest's flags plus RW.
    /// </summary>
    private bool MapLdtShadowPage(int page)
    {
        uint gva = _ldtBase + ((uint)page << 12);
        if (!GuestPageWalk.FindL1(_fmt, _baseMfn, gva, out var slot) || (slot.Entry & Pte.P) == 0) return false;
        ulong mfn = _fmt.Mfn(slot.Entry);
        if ((_xen.LdtEntry(page) & Pte.P) != 0) return _fmt.Mfn(_xen.LdtEntry(page)) == mfn;
        if (!Frames.GetPageAndType(mfn, FrameOwner.Domain, PageType.LdtPage)) return false;
        ulong flags = slot.Entry & ~_fmt.AddrMask;
        _xen.SetLdtEntry(page, (mfn << 12) | flags | Pte.RW);
        _ldtMapped++;
        return true;
    }
}
