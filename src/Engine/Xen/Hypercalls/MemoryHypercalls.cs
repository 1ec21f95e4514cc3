namespace Replayvisor.Engine.Xen.Hypercalls;

/// <summary>memory_op (xen/common/memory.c, x86_32/mm.c arch_memory_op; docs/xen-abi.md §12).</summary>
internal static class MemoryHypercalls
{
    public const uint IncreaseReservation = 0, DecreaseReservation = 1, MaximumRamPage = 2, CurrentReservation = 3,
        MaximumReservation = 4, MachphysMfnList = 5, PopulatePhysmap = 6, MemoryMap = 9;
    private const int ExtentShift = 4;
    private const uint CmdMask = 0xF;

    public static long MemoryOp(Hypervisor hv, in HypercallArgs a)
    {
        uint op = a.A1 & CmdMask;
        uint start = a.A1 >> ExtentShift;
        switch (op)
        {
            case IncreaseReservation:
            case DecreaseReservation:
            case PopulatePhysmap:
                return Reservation(hv, op, start, a.A2);
            case MaximumRamPage:
                return hv.Domain.Frames.TotalFrames;
            case CurrentReservation:
            case MaximumReservation:
            {
                Span<byte> d = stackalloc byte[2];
                if (!hv.Guest.TryRead(a.A2, d)) return -Errno.EFAULT;
                ushort dom = BitConverter.ToUInt16(d);
                if (dom != EventChannels.DomidSelf)
                {
                    if (!hv.Privileged) return -Errno.EPERM;
                    if (dom != hv.Domid) return -Errno.ESRCH;
                }
                return hv.Domain.NrPages;
            }
            case MachphysMfnList:
                return MfnList(hv, a.A2);
            case MemoryMap:
                return MemoryMapOp(hv, a.A2);
            default:
                return -Errno.ENOSYS;
        }
    }

    /// <summary>
    /// increase/populate: the domain already holds its maximum reservation, so no extent can be
    /// allocated and 0 extents are done (as Xen when tot_pages would pass max_pages).
    /// decrease: extents naming this domain's frames count as done (the model keeps the memory).
    /// </summary>
    private static long Reservation(Hypervisor hv, uint op, uint start, uint argPtr)
    {
        Span<byte> r = stackalloc byte[20];
        if (!hv.Guest.TryRead(argPtr, r)) return -Errno.EFAULT;
        uint extents = BitConverter.ToUInt32(r[0..]), nr = BitConverter.ToUInt32(r[4..]), order = BitConverter.ToUInt32(r[8..]);
        ushort dom = BitConverter.ToUInt16(r[16..]);
        if (start > nr) return start;
        if (dom != EventChannels.DomidSelf && (!hv.Privileged || dom != hv.Domid)) return start;
        if ((ulong)extents + (ulong)nr * 4 > hv.Layout.HypervisorVirtStart) return start;
        if (op != DecreaseReservation) return start;
        uint i = start;
        for (; i < nr; i++)
        {
            if (!hv.Guest.TryRead32(extents + i * 4, out uint gmfn)) break;
            bool ok = order < 20;
            for (uint j = 0; ok && j < (1u << (int)Math.Min(order, 19)); j++) ok = hv.Mm.IsGuestFrame(gmfn + j);
            if (!ok) break;
        }
        return i;
    }

    /// <summary>XENMEM_machphys_mfn_list: the first mfn of each superpage-sized chunk of the M2P.</summary>
    private static long MfnList(Hypervisor hv, uint argPtr)
    {
        Span<byte> x = stackalloc byte[12];
        if (!hv.Guest.TryRead(argPtr, x)) return -Errno.EFAULT;
        uint max = BitConverter.ToUInt32(x), list = BitConverter.ToUInt32(x[4..]);
        uint perExtent = hv.Layout.IsPae ? 512u : 1024u;
        uint chunks = (hv.Domain.M2PFrameCount + perExtent - 1) / perExtent;
        uint i = 0;
        for (; i != max && i < chunks; i++)
            if (!hv.Guest.TryWrite32(list + i * 4, hv.Domain.M2PFirstMfn + i * perExtent)) return -Errno.EFAULT;
        BitConverter.TryWriteBytes(x[8..], i);
        return hv.Guest.TryWrite(argPtr, x) ? 0 : -Errno.EFAULT;
    }

    /// <summary>XENMEM_memory_map: one E820 RAM entry covering the domain's pages (what later toolstacks set; 3.1 had none → -ENOSYS).</summary>
    private static long MemoryMapOp(Hypervisor hv, uint argPtr)
    {
        Span<byte> m = stackalloc byte[8];
        if (!hv.Guest.TryRead(argPtr, m)) return -Errno.EFAULT;
        uint nr = Math.Min(BitConverter.ToUInt32(m), 1u), buffer = BitConverter.ToUInt32(m[4..]);
        if (nr == 1)
        {
            Span<byte> e = stackalloc byte[20];
            BitConverter.TryWriteBytes(e, 0ul);
            BitConverter.TryWriteBytes(e[8..], (ulong)hv.Domain.NrPages << 12);
            BitConverter.TryWriteBytes(e[16..], 1u); // E820_RAM
            if (!hv.Guest.TryWrite(buffer, e)) return -Errno.EFAULT;
        }
        BitConverter.TryWriteBytes(m, nr);
        return hv.Guest.TryWrite(argPtr, m) ? 0 : -Errno.EFAULT;
    }
}
