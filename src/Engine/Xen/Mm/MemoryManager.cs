using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Cpu;

namespace Replayvisor.Engine.Xen.Mm;

/// <summary>Result of Xen's page-fault fixup: Handled = Xen fixed it (restart the guest); else bounce #PF with Cr2.</summary>
public readonly record struct PageFaultOutcome(bool Handled, uint Cr2);

// =====================================================================================
// STUB written on wip/xen-core ONLY so the Xen core compiles and its tests run. The real
// MemoryManager (page types, MMU hypercalls, Xen slots, GDT/TSS) is written on wip/xen-mm;
// the merge takes that file and drops this one. Nothing here validates anything.
// =====================================================================================
/// <summary>STUB of the page-type/MMU model (see wip/xen-mm). Same public surface, no page-type system.</summary>
public sealed class MemoryManager
{
    private readonly X86Cpu _cpu;
    private readonly BuiltDomain _domain;
    private uint _nextSpare;

    public MemoryManager(X86Cpu cpu, BuiltDomain domain, GuestMemory guest)
    {
        _cpu = cpu;
        _domain = domain;
        _ = guest;
        VmAssist = domain.Vcpu0.VmAssist;
        _nextSpare = domain.SpareFirstMfn;
    }

    public bool Privileged { get; init; }

    public uint VmAssist { get; set; }

    /// <summary>STUB: paging on with the builder's tables; GDTR points at the (unmapped) per-vcpu GDT area.</summary>
    public void Boot()
    {
        _cpu.Cr4 = _domain.IsPae ? Cr4Bits.PAE : 0;
        _cpu.Cr3 = _domain.TopTableMfn << 12;
        _cpu.Efer = 0;
        _cpu.Cr0 = Cr0Bits.PE | Cr0Bits.MP | Cr0Bits.ET | Cr0Bits.NE | Cr0Bits.WP | Cr0Bits.PG;
        _cpu.GdtrBase = 0xFF400000; // stub: Xen's per-domain area, not mapped by the stub
        _cpu.GdtrLimit = XenLayout.GdtLimit;
        _cpu.Tr = SegmentCache.Null(0);
        _cpu.FlushTlb();
    }

    public long MmuUpdate(in HypercallArgs a) => -Errno.ENOSYS;
    public long MmuextOp(in HypercallArgs a) => -Errno.ENOSYS;
    public long UpdateVaMapping(in HypercallArgs a) => -Errno.ENOSYS;
    public long UpdateVaMappingOtherdomain(in HypercallArgs a, bool privileged) => privileged ? -Errno.ENOSYS : -Errno.EPERM;
    public long SetGdt(in HypercallArgs a) => -Errno.ENOSYS;
    public long UpdateDescriptor(in HypercallArgs a) => -Errno.ENOSYS;

    public long VmAssistOp(uint cmd, uint type)
    {
        if (type > 3) return -Errno.EINVAL;
        switch (cmd)
        {
            case 0: VmAssist |= 1u << (int)type; return 0;
            case 1: VmAssist &= ~(1u << (int)type); return 0;
            default: return -Errno.ENOSYS;
        }
    }

    public bool NewBaseptr(uint mfn)
    {
        if (!IsGuestFrame(mfn)) return false;
        _cpu.Cr3 = mfn << 12;
        _cpu.FlushTlb();
        return true;
    }

    public uint CurrentBaseMfn => _cpu.Cr3 >> 12;

    public void SetKernelStack(ushort ss, uint esp) { }

    public PageFaultOutcome HandlePageFault(uint cr2, uint errorCode, int cpl) => new(false, cr2);

    public uint AllocXenFrame() => _nextSpare < _domain.SpareFirstMfn + _domain.SpareCount ? _nextSpare++ : 0;

    public bool IsGuestFrame(uint mfn) => _domain.Frames.IsDomainFrame(mfn);
}
