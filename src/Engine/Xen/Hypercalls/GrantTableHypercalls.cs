namespace Replayvisor.Engine.Xen.Hypercalls;

/// <summary>
/// grant_table_op (xen/common/grant_table.c): enough for a domain to own its grant table —
/// setup_table and query_size. Mapping/transfer/copy need a second domain and give -ENOSYS.
/// GNTTABOP_set_version and get_version arrived in Xen 4.0; 3.1 answers -ENOSYS (a guest then
/// keeps v1). On 4.19 the modelled domain is built with max_grant_version = 1 (xl.cfg; docs/xen-model.md
/// "Grant table version"), so gnttab_set_version answers as Xen 4.19 answers such a domain.
/// </summary>
internal static class GrantTableHypercalls
{
    public const uint SetupTable = 2, QuerySize = 6, SetVersion = 8, GetVersion = 10;
    /// <summary>gt_version: grant_table_init starts at 1, and max_grant_version = 1 keeps it there.</summary>
    public const uint TableVersion = 1;
    public const uint MaxFrames = 32, InitialFrames = 1;
    private const short GnttabOkay = 0, GeneralError = -1, BadDomain = -2, PermissionDenied = -8;

    public static long GrantTableOp(Hypervisor hv, in HypercallArgs a)
    {
        if (a.A3 > 512) return -Errno.EINVAL;
        switch (a.A1)
        {
            case SetupTable: return Setup(hv, a.A2, a.A3);
            case QuerySize: return Query(hv, a.A2, a.A3);
            case SetVersion when hv.Xen4: return SetVersionOp(hv, a.A2);
            case GetVersion when hv.Xen4: return GetVersionOp(hv, a.A2);
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

    /// <summary>
    /// gnttab_set_version (struct { u32 version; }): -EFAULT unreadable; -EINVAL for a version other
    /// than 1 or 2; -ENOSYS for 2 when max_grant_version is 1 ("behave as before set_version was
    /// introduced"); 0 for 1 (already the version). Every answer after the read writes the current
    /// version back (-EFAULT if that write fails).
    /// </summary>
    private static long SetVersionOp(Hypervisor hv, uint uop)
    {
        if (!hv.Guest.TryRead32(uop, out uint version)) return -Errno.EFAULT;
        long rc = version is not (1 or 2) ? -Errno.EINVAL : version == 2 ? -Errno.ENOSYS : 0;
        return hv.Guest.TryWrite32(uop, TableVersion) ? rc : -Errno.EFAULT;
    }

    /// <summary>
    /// gnttab_get_version (struct { domid_t dom; u16 pad; u32 version; }): -EFAULT unreadable;
    /// rcu_lock_domain_by_any_id → -ESRCH for a domain that does not exist (the model has itself and
    /// the backend domain 0); xsm_grant_query_size (XSM_TARGET) → -EPERM for another domain unless
    /// privileged; else the version is written at offset 4.
    /// </summary>
    private static long GetVersionOp(Hypervisor hv, uint uop)
    {
        if (!hv.Guest.TryRead32(uop, out uint head)) return -Errno.EFAULT;
        ushort dom = (ushort)head;
        bool self = dom == EventChannels.DomidSelf || dom == hv.Domid;
        if (!self && dom != EventChannels.BackendDomid) return -Errno.ESRCH;
        if (!self && !hv.Privileged) return -Errno.EPERM;
        return hv.Guest.TryWrite32(uop + 4, TableVersion) ? 0 : -Errno.EFAULT;
    }
}
