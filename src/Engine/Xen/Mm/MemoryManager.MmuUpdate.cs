namespace Replayvisor.Engine.Xen.Mm;

public sealed partial class MemoryManager
{
    private const uint MmuUpdateSize = 16; // struct mmu_update { u64 ptr; u64 val; }

    /// <summary>
    /// mmu_update(req*, count, done*, foreigndom) (xen-abi.md §10.3): stops at the first failing
    /// request (-EINVAL; bad command -ENOSYS; unreadable request -EFAULT) and writes *done.
    /// </summary>
    public long MmuUpdate(in HypercallArgs a, Func<uint, bool>? preempt = null)
    {
        uint reqs = a.A1, pdone = a.A3;
        long rc = BeginBatch(a, MmuUpdateSize, out uint count, out uint done, out var foreign);
        uint i = 0;
        if (rc == 0)
        {
            Span<byte> req = stackalloc byte[16];
            for (; i < count; i++)
            {
                if (Preempted(preempt, i, count)) { rc = -Errno.ERESTART; break; }
                if (!_guest.TryRead(reqs + i * MmuUpdateSize, req)) { rc = -Errno.EFAULT; break; }
                ulong ptr = BitConverter.ToUInt64(req), val = BitConverter.ToUInt64(req[8..]);
                uint cmd = (uint)ptr & (uint)(_fmt.EntrySize - 1);
                bool ok;
                switch (cmd)
                {
                    case MmuCmd.NormalPtUpdate:
                    case MmuCmd.PtUpdatePreserveAd:
                        ok = NormalPtUpdate(ptr & ~(ulong)(_fmt.EntrySize - 1), val, foreign, cmd == MmuCmd.PtUpdatePreserveAd);
                        break;
                    case MmuCmd.MachphysUpdate:
                        ok = MachphysUpdate(ptr >> 12, (uint)val, foreign);
                        break;
                    default:
                        rc = -Errno.ENOSYS;
                        ok = false;
                        break;
                }
                if (!ok)
                {
                    if (rc == 0) rc = -Errno.EINVAL;
                    break;
                }
            }
        }
        done += i;
        if (pdone != 0) _guest.TryWrite32(pdone, done);
        return rc;
    }

    private bool NormalPtUpdate(ulong addr, ulong val, FrameOwner foreign, bool preserveAd)
    {
        ulong mfn64 = addr >> 12;
        if (!Frames.GetPage(mfn64, FrameOwner.Domain)) return false;
        uint mfn = (uint)mfn64;
        int index = (int)(addr & 0xFFF) / _fmt.EntrySize;
        bool ok = false;
        PageType type = Frames.TypeOf(mfn);
        bool xenPrivate = Frames.IsXenPrivate(mfn);
        if (FrameTable.IsTableType(type) && Frames.GetType(mfn, type, xenPrivate))
        {
            ok = type switch
            {
                PageType.L1 => _updates.ModL1(mfn, index, val, foreign, preserveAd),
                PageType.L2 => _updates.ModL2(mfn, index, val, xenPrivate, preserveAd),
                PageType.L3 => _updates.ModL3(mfn, index, val, preserveAd),
                _ => false,
            };
            Frames.PutType(mfn);
        }
        else if (Frames.GetType(mfn, PageType.Writable))
        {
            // Not a page table: a plain store of one entry-sized word.
            _fmt.Write(mfn, index, val);
            Frames.PutType(mfn);
            ok = true;
        }
        Frames.PutPage(mfn);
        return ok;
    }

    /// <summary>MMU_MACHPHYS_UPDATE: M2P[mfn] = pfn for a frame of the (foreign) domain.</summary>
    private bool MachphysUpdate(ulong mfn64, uint pfn, FrameOwner foreign)
    {
        if (!Frames.GetPage(mfn64, foreign)) return false;
        uint mfn = (uint)mfn64;
        if (mfn < _domain.M2PEntries && mfn / 1024 < _domain.M2PFrameCount)
            _domain.Memory.Write32(((ulong)_domain.M2PFirstMfn << 12) + (ulong)mfn * 4, pfn);
        Frames.PutPage(mfn);
        return true;
    }
}
