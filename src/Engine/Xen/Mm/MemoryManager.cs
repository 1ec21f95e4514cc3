using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Cpu;

namespace Replayvisor.Engine.Xen.Mm;

/// <summary>
/// Xen 3.1's memory management for one single-vcpu 32-bit PV domain (docs/xen-abi.md §3, §7, §10, §11):
/// the page type system (<see cref="FrameTable"/>), Xen's mappings in the hypervisor hole, the MMU
/// and descriptor hypercall bodies, and the page-fault fixups Xen makes before bouncing a #PF
/// (lazy LDT mapping, writable-pagetable emulation). Hypercall bodies return the value for EAX.
/// </summary>
public sealed partial class MemoryManager : IMmContext
{
    private readonly X86Cpu _cpu;
    private readonly BuiltDomain _domain;
    private readonly GuestMemory _guest;
    private readonly XenLayout _layout;
    private readonly PagingFormat _fmt;
    private readonly HypervisorArea _xen;
    private readonly PageTableRules _rules;
    private readonly EntryUpdates _updates;
    private readonly PtwrEmulator _ptwr;
    private uint _nextSpare;
    private uint _baseMfn;
    private readonly uint[] _gdtFrames = new uint[HypervisorArea.GdtPages];
    private uint _gdtEntries;
    private uint _ldtBase, _ldtEntries;
    private int _ldtMapped;

    public MemoryManager(X86Cpu cpu, BuiltDomain domain, GuestMemory guest)
    {
        ArgumentNullException.ThrowIfNull(cpu);
        ArgumentNullException.ThrowIfNull(domain);
        ArgumentNullException.ThrowIfNull(guest);
        _cpu = cpu;
        _domain = domain;
        _guest = guest;
        _layout = domain.Layout;
        Privileged = domain.InitialDomain;
        VmAssist = domain.Vcpu0.VmAssist;

        Frames = new FrameTable(domain.Frames.TotalFrames);
        for (uint mfn = 1; mfn < domain.Frames.TotalFrames; mfn++)
        {
            if (domain.Frames.IsDomainFrame(mfn) || mfn == domain.SharedInfoMfn) Frames.Assign(mfn, FrameOwner.Domain);
            else if (domain.IsXenOwned(mfn)) Frames.Assign(mfn, FrameOwner.Xen);
        }
        _nextSpare = domain.SpareFirstMfn;
        _fmt = new PagingFormat(domain.Memory, _layout);
        _peekRam = domain.Memory.Ram;
        _peekPae = _fmt.Pae;
        _peekLimit = _layout.HypervisorVirtStart;
        _xen = new HypervisorArea(_fmt, domain, AllocSpare);
        _rules = new PageTableRules(_fmt, Frames, _xen, this);
        _updates = new EntryUpdates(_fmt, _rules, this);
        _ptwr = new PtwrEmulator(cpu, _fmt, _rules);
        Frames.Hooks = _rules;
    }

    /// <summary>The initial domain (I/O privilege: FLUSH_CACHE, update_va_mapping_otherdomain, I/O memory mappings).</summary>
    public bool Privileged { get; init; }

    /// <summary>
    /// The guest is a 32-bit guest of 64-bit Xen (the 4.19 profile): its L3 entries follow
    /// l3_disallow_mask for is_pv_32bit_domain, and the CPU walks its L3 as a long-mode L3.
    /// </summary>
    public bool CompatGuest
    {
        get => _cpu.PaeRootIsLongModeL3;
        set { _fmt.L3Disallow = PagingFormat.L3DisallowFor(value); _cpu.PaeRootIsLongModeL3 = value; }
    }

    /// <summary>The page type system; read-only queries for the rest of the model and for tests.</summary>
    public FrameTable Frames { get; }

    /// <summary>VMASST bitmap (bit 2 writable_pagetables, bit 3 pae_extended_cr3).</summary>
    public uint VmAssist { get; set; }

    /// <summary>mfn of the current top-level table (what CR3 points to).</summary>
    public uint CurrentBaseMfn => _baseMfn;

    /// <summary>Per-domain area (docs/xen-abi.md §3.1): GDT base (= GDTR.base), LDT shadow base, TSS.</summary>
    public uint GdtVirtualBase => _xen.GdtVa;
    public uint LdtShadowBase => _xen.LdtVa;
    public uint TssVirtualBase => _xen.TssVa;

    /// <summary>Guest LDT as set by MMUEXT_SET_LDT, and the GDT entry count from set_gdt.</summary>
    public uint LdtBase => _ldtBase;
    public uint LdtEntries => _ldtEntries;
    public uint GdtEntries => _gdtEntries;
    public ushort KernelSs { get; private set; }
    public uint KernelSp { get; private set; }

    bool IMmContext.Privileged => Privileged;
    void IMmContext.LdtFrameUnmapped() => InvalidateShadowLdt();
    void IMmContext.FlushTlb() => _cpu.FlushTlb();

    private uint AllocSpare()
    {
        if (_nextSpare >= _domain.SpareFirstMfn + _domain.SpareCount) return 0;
        return _nextSpare++;
    }

    /// <summary>
    /// A zeroed spare Xen frame shared with the guest (Xen's share_xen_page_with_guest, as for grant
    /// table frames): the guest may map it. 0 when the spare frames are used up.
    /// </summary>
    public uint AllocXenFrame()
    {
        uint mfn = AllocSpare();
        if (mfn == 0) return 0;
        _domain.Memory.ClearFrame(mfn);
        Frames.Assign(mfn, FrameOwner.Domain);
        return mfn;
    }

    /// <summary>True for frames the guest owns (its RAM, shared_info, frames shared by <see cref="AllocXenFrame"/>).</summary>
    public bool IsGuestFrame(uint mfn) => Frames.OwnerOf(mfn) == FrameOwner.Domain;

    /// <summary>
    /// Whether get_page_from_gfn + get_page_type(PGT_writable_page) would succeed for a PV domain
    /// (gfn = mfn): a frame of the domain that is writable already or whose type count is 0. A query
    /// only: no reference or type is taken.
    /// </summary>
    public bool CanMapWritable(ulong mfn) =>
        mfn <= uint.MaxValue && Frames.OwnerOf((uint)mfn) == FrameOwner.Domain && !Frames.IsXenPrivate((uint)mfn)
        && (Frames.TypeOf((uint)mfn) is PageType.None or PageType.Writable || Frames.TypeCount((uint)mfn) == 0);

    /// <summary>
    /// Takes over the built domain (docs/xen-abi.md §7, §10): pins and validates the initial tables
    /// (PIN_L2 / PIN_L3, which fills Xen's L2 slots), installs the top table as the base, and
    /// sets the CPU's control registers, GDTR, TR and LDTR.
    /// </summary>
    public void Boot()
    {
        uint top = _domain.TopTableMfn;
        if (!Frames.GetPageAndType(top, FrameOwner.Domain, _fmt.RootType) || !Frames.TrySetPinned(top))
            throw new InvalidOperationException($"the initial page tables (top mfn 0x{top:x}) do not validate");

        _cpu.Cr0 = Cr0Bits.PE | Cr0Bits.MP | Cr0Bits.ET | Cr0Bits.NE | Cr0Bits.WP | Cr0Bits.PG;
        _cpu.Cr4 = _fmt.Pae ? Cr4Bits.PAE : 0;
        _cpu.Efer = _fmt.Pae ? 0x800ul : 0; // NXE
        _cpu.GdtrBase = _xen.GdtVa;
        _cpu.GdtrLimit = XenLayout.GdtLimit;
        ulong tss = HypervisorArea.SystemDescriptor(_xen.TssVa, HypervisorArea.TssLimit, 0x8B);
        _cpu.Tr = SegmentCache.FromDescriptor(HypervisorArea.TssSelector, tss);
        _cpu.Ldtr = SegmentCache.Null(0);
        SetKernelStack(_domain.Vcpu0.KernelSs, _domain.Vcpu0.KernelSp);
        if (!NewBaseptr(top))
            throw new InvalidOperationException($"the initial top table mfn 0x{top:x} cannot become the base");
    }

    /// <summary>
    /// new_guest_cr3 (MMUEXT_NEW_BASEPTR and the privileged mov-to-cr3 emulation): takes a root-type
    /// ref (validating if needed; pinning not required), drops the shadow LDT, loads CR3, flushes
    /// the TLB, drops the old base's refs and reloads the LDT. False = invalid frame or failed validation.
    /// </summary>
    public bool NewBaseptr(uint mfn)
    {
        if (!Frames.GetPageAndType(mfn, FrameOwner.Domain, _fmt.RootType)) return false;
        InvalidateShadowLdt();
        uint old = _baseMfn;
        _baseMfn = mfn;
        _cpu.Cr3 = mfn << 12;
        _cpu.FlushTlb();
        if (old != 0) Frames.PutPageAndType(old);
        LoadLdt();
        return true;
    }

    /// <summary>stack_switch: the ring-1 stack for ring-3→ring-1 transitions (TSS ss1/esp1).</summary>
    public void SetKernelStack(ushort ss, uint esp)
    {
        KernelSs = ss;
        KernelSp = esp;
        _xen.SetKernelStack(ss, esp);
    }

    /// <summary>vm_assist (docs/xen-abi.md §5): type &gt; 3 → -EINVAL, unknown cmd → -ENOSYS.</summary>
    /// <summary>The vm_assist types the hypervisor accepts (<see cref="Vmasst.Valid31"/> or <see cref="Vmasst.ValidCompat"/>).</summary>
    public uint VmAssistValid { get; set; } = Vmasst.Valid31;

    /// <summary>vm_assist(cmd, type) (common/domain.c vm_assist): an unknown type -EINVAL first, then an unknown command -ENOSYS.</summary>
    public long VmAssistOp(uint cmd, uint type)
    {
        if (type >= 32 || (VmAssistValid & (1u << (int)type)) == 0) return -Errno.EINVAL;
        switch (cmd)
        {
            case Vmasst.CmdEnable: VmAssist |= 1u << (int)type; return 0;
            case Vmasst.CmdDisable: VmAssist &= ~(1u << (int)type); return 0;
            default: return -Errno.ENOSYS;
        }
    }

    /// <summary>VMASST_TYPE_architectural_iopl is on: the virtual IOPL behaves as EFLAGS.IOPL would.</summary>
    public bool ArchitecturalIopl => (VmAssist & (1u << Vmasst.ArchitecturalIopl)) != 0;

    private bool WritablePagetables => (VmAssist & (1u << Vmasst.WritablePagetables)) != 0;

    /// <summary>set_foreigndom: SELF → the domain; DOMID_IO (and DOMID_XEN when privileged) → a foreign owner of no RAM.</summary>
    private bool ForeignOwner(uint domid, out FrameOwner owner)
    {
        owner = FrameOwner.Domain;
        domid &= 0xFFFF;
        if (domid == DomId.Self) return true;
        if (domid == DomId.Io || (Privileged && domid == DomId.Xen))
        {
            owner = FrameOwner.Io;
            return true;
        }
        return false;
    }

    private bool ArrayOk(uint ptr, uint count, uint size) =>
        (ulong)ptr + (ulong)count * size <= _layout.HypervisorVirtStart;

    /// <summary>
    /// The common start of mmu_update and mmuext_op (docs/xen-abi.md §10.3-10.4): a count carrying
    /// MMU_UPDATE_PREEMPTED resumes with *done as written so far; then the foreign domain and the
    /// request array are checked. Returns 0 or the error of the whole call.
    /// </summary>
    /// <summary>Elements left when the last batch stopped with -ERESTART (the hypercall continues with them).</summary>
    public uint PreemptedRemaining { get; private set; }

    /// <summary>The hypervisor's preemption check before element i; remembers what is left when it says stop.</summary>
    private bool Preempted(Func<uint, bool>? preempt, uint i, uint count)
    {
        if (preempt == null || !preempt(i)) return false;
        PreemptedRemaining = count - i;
        return true;
    }

    private long BeginBatch(in HypercallArgs a, uint elementSize, out uint count, out uint done, out FrameOwner foreign)
    {
        count = a.A2;
        done = 0;
        if ((count & MmuCmd.UpdatePreempted) != 0)
        {
            count &= ~MmuCmd.UpdatePreempted;
            if (a.A3 != 0 && !_guest.TryRead32(a.A3, out done)) done = 0;
        }
        if (!ForeignOwner(a.A4, out foreign)) return -Errno.ESRCH;
        if (!ArrayOk(a.A1, count, elementSize)) return -Errno.EFAULT;
        return 0;
    }
}
