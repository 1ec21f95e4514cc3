namespace Replayvisor.Engine.Xen.Mm;

/// <summary>What the page-table rules need from the memory manager.</summary>
internal interface IMmContext
{
    bool Privileged { get; }
    /// <summary>A read-only mapping of an in-use LDT page went away: Xen blows the whole shadow LDT.</summary>
    void LdtFrameUnmapped();
    void FlushTlb();
}

/// <summary>
/// Entry and table validation of docs/xen-abi.md §10.2 (Xen 3.1 mm.c get_page_from_l?e, put_page_from_l?e,
/// alloc_l?_table, free_l?_table, alloc_segdesc_page). Implements the frame table's validation hooks.
/// </summary>
internal sealed class PageTableRules : IPageTypeHooks
{
    private readonly PagingFormat _fmt;
    private readonly FrameTable _ft;
    private readonly HypervisorArea _xen;
    private readonly IMmContext _ctx;

    public PageTableRules(PagingFormat fmt, FrameTable ft, HypervisorArea xen, IMmContext ctx)
    {
        _fmt = fmt;
        _ft = ft;
        _xen = xen;
        _ctx = ctx;
    }

    /// <summary>Non-PAE: slots 0–1007 are the guest's. PAE: all 512, except ≥ 428 in the Xen-private slot-3 L2.</summary>
    public bool IsGuestL2Slot(int index, bool xenPrivate) =>
        (_fmt.Pae && !xenPrivate) || index < _xen.FirstXenSlot;

    // ---- L1 ----

    public bool GetFromL1e(ulong e, FrameOwner who)
    {
        if ((e & Pte.P) == 0) return true;
        if ((e & _fmt.L1Disallow) != 0) return false;
        ulong mfn = _fmt.Mfn(e);
        if (!_ft.IsValid(mfn))
            return _ctx.Privileged && who is FrameOwner.Domain or FrameOwner.Io; // I/O memory past RAM: initial domain only (DOMID_IO reverts to the caller)
        return (e & Pte.RW) != 0 ? _ft.GetPageAndType(mfn, who, PageType.Writable) : _ft.GetPage(mfn, who);
    }

    public void PutFromL1e(ulong e)
    {
        if ((e & Pte.P) == 0) return;
        ulong mfn = _fmt.Mfn(e);
        if (!_ft.IsValid(mfn)) return;
        uint m = (uint)mfn;
        if ((e & Pte.RW) != 0)
        {
            _ft.PutPageAndType(m);
            return;
        }
        if (_ft.TypeOf(m) == PageType.LdtPage && _ft.TypeCount(m) != 0 && _ft.OwnerOf(m) == FrameOwner.Domain)
            _ctx.LdtFrameUnmapped();
        _ft.PutPage(m);
    }

    // ---- L2 / L3 ----

    public bool GetFromL2e(ulong e, uint tableMfn)
    {
        if ((e & Pte.P) == 0) return true;
        if ((e & _fmt.L2Disallow) != 0) return false;
        ulong mfn = _fmt.Mfn(e);
        if (_ft.GetPageAndType(mfn, FrameOwner.Domain, PageType.L1)) return true;
        return GetLinear(e, tableMfn, PageType.L2);
    }

    public void PutFromL2e(ulong e, uint tableMfn)
    {
        if ((e & Pte.P) == 0) return;
        ulong mfn = _fmt.Mfn(e);
        if (mfn != tableMfn && _ft.IsValid(mfn)) _ft.PutPageAndType((uint)mfn);
    }

    public bool GetFromL3e(ulong e, uint tableMfn)
    {
        if ((e & Pte.P) == 0) return true;
        if ((e & _fmt.L3Disallow) != 0) return false;
        ulong mfn = _fmt.Mfn(e);
        if (_ft.GetPageAndType(mfn, FrameOwner.Domain, PageType.L2)) return true;
        return GetLinear(e, tableMfn, PageType.L3);
    }

    public void PutFromL3e(ulong e, uint tableMfn) => PutFromL2e(e, tableMfn);

    /// <summary>
    /// get_linear_pagetable: an entry may point at an already validated table of its own level,
    /// read-only only. A self-reference takes no ref at all.
    /// </summary>
    private bool GetLinear(ulong e, uint tableMfn, PageType level)
    {
        if ((e & Pte.RW) != 0) return false;
        ulong mfn = _fmt.Mfn(e);
        if (mfn == tableMfn) return true;
        if (!_ft.GetPage(mfn, FrameOwner.Domain)) return false;
        if (_ft.GetLinearRef((uint)mfn, level)) return true;
        _ft.PutPage((uint)mfn);
        return false;
    }

    /// <summary>PAE L3 slot 3: present, typed "L2 + Xen-private", and used by this L3 only.</summary>
    private bool GetSlot3(ulong e)
    {
        if ((e & Pte.P) == 0 || (e & _fmt.L3Disallow) != 0) return false;
        ulong mfn = _fmt.Mfn(e);
        if (!_ft.GetPageAndType(mfn, FrameOwner.Domain, PageType.L2, xenPrivate: true)) return false;
        if (_ft.TypeCount((uint)mfn) == 1) return true;
        _ft.PutPageAndType((uint)mfn); // "PAE L3 3rd slot is shared"
        return false;
    }

    // ---- whole tables ----

    public bool Validate(uint mfn, PageType type, bool xenPrivate) => type switch
    {
        PageType.L1 => AllocL1(mfn),
        PageType.L2 => AllocL2(mfn, xenPrivate),
        PageType.L3 => _fmt.Pae && AllocL3(mfn),
        PageType.GdtPage or PageType.LdtPage => AllocSegDesc(mfn),
        _ => false, // no L4 on a 32-bit hypervisor
    };

    public void Devalidate(uint mfn, PageType type, bool xenPrivate)
    {
        // free_page_type: flush before any further use of a mapping that went through this table.
        _ctx.FlushTlb();
        switch (type)
        {
            case PageType.L1:
                for (int i = 0; i < _fmt.Entries; i++) PutFromL1e(_fmt.Read(mfn, i));
                break;
            case PageType.L2:
                for (int i = 0; i < _fmt.Entries; i++)
                    if (IsGuestL2Slot(i, xenPrivate)) PutFromL2e(_fmt.Read(mfn, i), mfn);
                break;
            case PageType.L3:
                for (int i = 0; i < 3; i++) PutFromL3e(_fmt.Read(mfn, i), mfn);
                ulong s3 = _fmt.Read(mfn, 3);
                if ((s3 & Pte.P) != 0 && _ft.IsValid(_fmt.Mfn(s3))) _ft.PutPageAndType((uint)_fmt.Mfn(s3));
                break;
        }
    }

    public void TypeChanged(PageType from, PageType to) => _ctx.FlushTlb();

    private bool AllocL1(uint mfn)
    {
        for (int i = 0; i < _fmt.Entries; i++)
        {
            if (GetFromL1e(_fmt.Read(mfn, i), FrameOwner.Domain)) continue;
            while (--i >= 0) PutFromL1e(_fmt.Read(mfn, i));
            return false;
        }
        return true;
    }

    private bool AllocL2(uint mfn, bool xenPrivate)
    {
        for (int i = 0; i < _fmt.Entries; i++)
        {
            if (!IsGuestL2Slot(i, xenPrivate) || GetFromL2e(_fmt.Read(mfn, i), mfn)) continue;
            while (--i >= 0)
                if (IsGuestL2Slot(i, xenPrivate)) PutFromL2e(_fmt.Read(mfn, i), mfn);
            return false;
        }
        if (!_fmt.Pae || xenPrivate) _xen.FillXenSlots(mfn);
        return true;
    }

    private bool AllocL3(uint mfn)
    {
        int i = 0;
        for (; i < 3; i++)
            if (!GetFromL3e(_fmt.Read(mfn, i), mfn)) break;
        if (i == 3 && GetSlot3(_fmt.Read(mfn, 3)))
            return true;
        while (--i >= 0) PutFromL3e(_fmt.Read(mfn, i), mfn);
        return false;
    }

    /// <summary>alloc_segdesc_page: all 512 descriptors must pass check_descriptor (which may adjust them in place).</summary>
    private bool AllocSegDesc(uint mfn)
    {
        ulong page = (ulong)mfn << 12;
        for (int i = 0; i < 512; i++)
        {
            ulong d = _fmt.Mem.Read64(page + (ulong)i * 8), orig = d;
            if (!DescriptorCheck.Check(ref d, _fmt.Layout.GuestSegmentMax)) return false;
            if (d != orig) _fmt.Mem.Write64(page + (ulong)i * 8, d);
        }
        return true;
    }
}
