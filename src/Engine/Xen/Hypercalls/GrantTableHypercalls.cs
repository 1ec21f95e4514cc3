namespace Replayvisor.Engine.Xen.Hypercalls;

/// <summary>
/// grant_table_op (xen/common/grant_table.c): enough for a domain to own its grant table —
/// setup_table and query_size. Mapping/transfer/copy need a second domain and give -ENOSYS.
/// GNTTABOP_set_version arrived in Xen 4.0; 3.1 answers -ENOSYS (a guest then keeps v1).
/// </summary>
internal static class GrantTableHypercalls
{
    public const uint SetupTable = 2, QuerySize = 6, SetVersion = 8;
    public const uint MaxFrames = 32, InitialFrames = 1;
    private const short GnttabOkay = 0, GeneralError = -1, BadDomain = -2, PermissionDenied = -8;

    public static long GrantTableOp(Hypervisor hv, in HypercallArgs a)
    {
        if (a.A3 > 512) return -Errno.EINVAL;
        switch (a.A1)
        {
            case SetupTable: return Setup(hv, a.A2, a.A3);
            case QuerySize: return Query(hv, a.A2, a.A3);
            default: return -Errno.ENOSYS;
        }
    }

    private static short CheckDomain(Hypervisor hv, ushort dom)
    {
        if (dom == EventChannels.DomidSelf) return GnttabOkay;
        if (!hv.Privileged) return PermissionDenied;
        return dom == hv.Domid ? GnttabOkay : BadDomain;
    }

    private static long Setup(Hypervisor hv, uint uop, uint count)
    {
        if (count != 1) return -Errno.EINVAL;
        Span<byte> op = stackalloc byte[16];
        if (!hv.Guest.TryRead(uop, op)) return -Errno.EFAULT;
        uint nr = BitConverter.ToUInt32(op[4..]);
        uint list = BitConverter.ToUInt32(op[12..]);
        short status = nr > MaxFrames ? GeneralError : CheckDomain(hv, BitConverter.ToUInt16(op));
        if (status == GnttabOkay)
        {
            if (!hv.GrowGrantTable(Math.Max(nr, InitialFrames))) status = GeneralError;
            else
                for (int i = 0; i < nr; i++) hv.Guest.TryWrite32(list + (uint)i * 4, hv.GrantFrames[i]);
        }
        BitConverter.TryWriteBytes(op[8..], status);
        return hv.Guest.TryWrite(uop, op) ? 0 : -Errno.EFAULT;
    }

    private static long Query(Hypervisor hv, uint uop, uint count)
    {
        if (count != 1) return -Errno.EINVAL;
        Span<byte> op = stackalloc byte[16];
        if (!hv.Guest.TryRead(uop, op)) return -Errno.EFAULT;
        short status = CheckDomain(hv, BitConverter.ToUInt16(op));
        if (status == GnttabOkay)
        {
            hv.GrowGrantTable(InitialFrames);
            BitConverter.TryWriteBytes(op[4..], (uint)hv.GrantFrames.Count);
            BitConverter.TryWriteBytes(op[8..], MaxFrames);
        }
        BitConverter.TryWriteBytes(op[12..], status);
        return hv.Guest.TryWrite(uop, op) ? 0 : -Errno.EFAULT;
    }
}
