namespace Replayvisor.Engine.Xen.Mm;

public sealed partial class MemoryManager
{
    private const uint MmuextOpSize = 12; // struct mmuext_op { u32 cmd; u32 arg1; u32 arg2; } on x86_32

    /// <summary>
    /// mmuext_op(ops*, count, done*, foreigndom) (xen-abi.md §10.4): stops at the first failure
    /// (-EINVAL; unknown command -ENOSYS; unreadable op -EFAULT) and writes *done. Deferred TLB
    /// flushes and LDT reloads run at the end, as Xen's process_deferred_ops.
    /// </summary>
    public long MmuextOp(in HypercallArgs a, Func<uint, bool>? preempt = null)
    {
        uint ops = a.A1, pdone = a.A3;
        long rc = BeginBatch(a, MmuextOpSize, out uint count, out uint done, out var foreign);
        uint i = 0;
        bool flush = false, reloadLdt = false;
        if (rc == 0)
        {
            Span<byte> op = stackalloc byte[12];
            for (; i < count; i++)
            {
                if (Preempted(preempt, i, count)) { rc = -Errno.ERESTART; break; }
                if (!_guest.TryRead(ops + i * MmuextOpSize, op)) { rc = -Errno.EFAULT; break; }
                uint cmd = BitConverter.ToUInt32(op), arg1 = BitConverter.ToUInt32(op[4..]), arg2 = BitConverter.ToUInt32(op[8..]);
                bool ok = true;
                switch (cmd)
                {
                    case MmuextCmd.PinL1Table:
                    case MmuextCmd.PinL2Table:
                    case MmuextCmd.PinL3Table:
                    case MmuextCmd.PinL4Table:
                        ok = Pin(arg1, (int)cmd + 1, foreign);
                        break;
                    case MmuextCmd.UnpinTable:
                        ok = Unpin(arg1);
                        break;
                    case MmuextCmd.NewBaseptr:
                        ok = NewBaseptr(arg1);
                        if (ok) flush = false; // new_guest_cr3 flushed already
                        break;
                    case MmuextCmd.TlbFlushLocal:
                    case MmuextCmd.TlbFlushAll:
                        flush = true;
                        break;
                    case MmuextCmd.InvlpgLocal:
                    case MmuextCmd.InvlpgAll:
                        _cpu.InvalidatePage(arg1);
                        break;
                    case MmuextCmd.TlbFlushMulti:
                    case MmuextCmd.InvlpgMulti:
                        if (!_guest.TryRead32(arg2, out uint vmask)) { ok = false; break; }
                        if ((vmask & 1) != 0)
                        {
                            if (cmd == MmuextCmd.TlbFlushMulti) _cpu.FlushTlb();
                            else _cpu.InvalidatePage(arg1);
                        }
                        break;
                    case MmuextCmd.FlushCache:
                        ok = Privileged; // wbinvd: nothing to do for an emulated cache
                        break;
                    case MmuextCmd.SetLdt:
                        ok = SetLdt(arg1, arg2, ref reloadLdt);
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
        if (flush) _cpu.FlushTlb();
        if (reloadLdt) LoadLdt();
        done += i;
        if (pdone != 0) _guest.TryWrite32(pdone, done);
        return rc;
    }

    /// <summary>
    /// MMUEXT_PIN_Lx_TABLE: a type ref of that level (validating if needed), then the pinned bit.
    /// A level above the hypervisor's paging levels is silently ignored (non-PAE: L3, L4; PAE: L4).
    /// </summary>
    private bool Pin(uint mfn, int level, FrameOwner foreign)
    {
        int levels = _fmt.Pae ? 3 : 2;
        if (level > levels) return true;
        var type = level switch { 1 => PageType.L1, 2 => PageType.L2, _ => PageType.L3 };
        if (!Frames.GetPageAndType(mfn, foreign, type)) return false;
        if (Frames.TrySetPinned(mfn)) return true;
        Frames.PutPageAndType(mfn); // already pinned
        return false;
    }

    private bool Unpin(uint mfn)
    {
        if (!Frames.GetPage(mfn, FrameOwner.Domain)) return false;
        bool ok = Frames.TryClearPinned(mfn);
        if (ok) Frames.PutPageAndType(mfn);
        Frames.PutPage(mfn);
        return ok;
    }
}
