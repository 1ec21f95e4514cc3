namespace Replayvisor.Engine.Xen.Mm;

public sealed partial class MemoryManager
{
    /// <summary>
    /// update_va_mapping(va, pte_lo, pte_hi, flags) (docs/xen-abi.md §10.5): walks the current tables to
    /// the L1 entry for va and applies it with mmu_update's checks, then flushes per the UVMF flags
    /// (even when the update failed, as Xen does).
    /// </summary>
    public long UpdateVaMapping(in HypercallArgs a) => UpdateVaMapping(a.A1, a.A2, a.A3, a.A4, FrameOwner.Domain);

    /// <summary>update_va_mapping_otherdomain: -EPERM unless privileged; only DOMID_SELF exists here (else -ESRCH).</summary>
    public long UpdateVaMappingOtherdomain(in HypercallArgs a, bool privileged)
    {
        if (!privileged) return -Errno.EPERM;
        if ((a.A5 & 0xFFFF) != DomId.Self) return -Errno.ESRCH;
        return UpdateVaMapping(a.A1, a.A2, a.A3, a.A4, FrameOwner.Domain);
    }

    private long UpdateVaMapping(uint va, uint lo, uint hi, uint flags, FrameOwner foreign)
    {
        if (va >= _layout.HypervisorVirtStart) return -Errno.EINVAL;
        ulong val = _fmt.Pae ? HypercallArgs.Pair(lo, hi) : lo;
        long rc = 0;
        // Beyond Xen 3.1: the frame reached must really be an L1 (a linear L2 entry would otherwise
        // let an "L1" update land in an L2), as later Xen checks.
        if (!GuestPageWalk.FindL1(_fmt, _baseMfn, va, out var slot)
            || Frames.TypeOf(slot.L1Mfn) != PageType.L1 || Frames.TypeCount(slot.L1Mfn) == 0
            || !_updates.ModL1(slot.L1Mfn, slot.Index, val, foreign))
            rc = -Errno.EINVAL;

        uint target = flags & ~Uvmf.FlushTypeMask;
        switch (flags & Uvmf.FlushTypeMask)
        {
            case Uvmf.TlbFlush:
                if (FlushTargetsMe(target, ref rc)) _cpu.FlushTlb();
                break;
            case Uvmf.Invlpg:
                if (FlushTargetsMe(target, ref rc)) _cpu.InvalidatePage(va);
                break;
        }
        return rc;
    }

    /// <summary>UVMF target: LOCAL, ALL, or a pointer to a vcpu bitmap (unreadable → -EFAULT).</summary>
    private bool FlushTargetsMe(uint target, ref long rc)
    {
        if (target is Uvmf.Local or Uvmf.All) return true;
        if (!_guest.TryRead32(target, out uint vmask))
        {
            rc = -Errno.EFAULT;
            return false;
        }
        return (vmask & 1) != 0;
    }
}
