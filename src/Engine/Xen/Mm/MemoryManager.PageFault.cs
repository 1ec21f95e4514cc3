using Replayvisor.Engine.Cpu;

namespace Replayvisor.Engine.Xen.Mm;

public sealed partial class MemoryManager
{
    /// <summary>
    /// Xen's fixup_page_fault, called by the core for every #PF the guest raises, before bouncing:
    /// (1) a fault in the per-domain LDT shadow area maps the guest's LDT page lazily (Handled: the
    /// instruction restarts), or bounces with cr2 = ldt_base + offset; (2) writable-pagetable
    /// emulation of a ring-1 write to a read-only mapped, in-use L1 (docs/xen-abi.md §10.6) (Handled:
    /// the store was validated and done, EIP advanced and the instruction counted as retired).
    /// Anything else: Bounce with the original cr2.
    /// </summary>
    public PageFaultOutcome HandlePageFault(uint cr2, uint errorCode, int cpl)
    {
        // Any CPL: descriptor-table reads are implicit supervisor accesses, and no guest segment
        // reaches the per-domain area (limits are truncated at M2P_END), so only the CPU gets here.
        uint ldtArea = _xen.LdtVa;
        if (cr2 >= ldtArea && cr2 - ldtArea < HypervisorArea.LdtPages * 0x1000u)
        {
            uint offset = cr2 - ldtArea;
            return MapLdtShadowPage((int)(offset >> 12))
                ? PageFaultOutcome.Fixed(cr2)
                : PageFaultOutcome.Bounce(_ldtBase + offset);
        }

        if (WritablePagetables && cpl == 1 && (errorCode & PfErr.W) != 0 && cr2 < _layout.HypervisorVirtStart
            && GuestPageWalk.FindL1(_fmt, _baseMfn, cr2, out var slot)
            && (slot.Entry & (Pte.P | Pte.RW)) == Pte.P)
        {
            ulong mfn = _fmt.Mfn(slot.Entry);
            if (Frames.IsValid(mfn) && Frames.TypeOf((uint)mfn) == PageType.L1 && Frames.TypeCount((uint)mfn) != 0
                && Frames.OwnerOf((uint)mfn) == FrameOwner.Domain
                && _ptwr.TryEmulate(cr2, (uint)mfn, _baseMfn))
                return PageFaultOutcome.Fixed(cr2);
        }
        return PageFaultOutcome.Bounce(cr2);
    }
}
