namespace Replayvisor.Engine.Xen.Hypercalls;

/// <summary>
/// Toolstack-only and absent interfaces, answered with Xen's error codes (docs/xen-model.md,
/// "Interfaces the model does not offer"). Xen 3.1 refuses an unprivileged caller before reading
/// anything (IS_PRIV). Xen 4.19 reads the argument (-EFAULT), checks the interface version
/// (-EACCES) and then asks XSM, whose default policy (xen/include/xsm/dummy.h) refuses a domU
/// (-EPERM); domctl looks the target domain up first (-ESRCH). The initial domain passes those
/// checks and gets -ENOSYS: the model has no toolstack behind these interfaces.
/// </summary>
internal static class ToolstackHypercalls
{
    /// <summary>Interface versions of Xen 4.19 (public/platform.h, sysctl.h, domctl.h, arch-x86/xen-mca.h).</summary>
    public const uint PlatformVersion = 0x03000001, SysctlVersion = 0x00000015, DomctlVersion = 0x00000017, McaVersion = 0x01ecc003;
    /// <summary>Sizes of the argument structs copied in (cmd, interface_version, [domain], union).</summary>
    public const int PlatformOpSize = 136, SysctlSize = 136, DomctlSize = 144, McaSize = 8 + 128;
    private const uint DomctlCreateDomain = 1, DomctlShadowOp = 10;

    /// <summary>platform_op (7): arch/x86/platform_hypercall.c.</summary>
    public static long PlatformOp(Hypervisor hv, in HypercallArgs a) => Versioned(hv, a.A1, PlatformOpSize, PlatformVersion);

    /// <summary>sysctl (35): common/sysctl.c.</summary>
    public static long Sysctl(Hypervisor hv, in HypercallArgs a) => Versioned(hv, a.A1, SysctlSize, SysctlVersion);

    /// <summary>domctl (36): common/domctl.c. createdomain has no target; any other command needs one that exists.</summary>
    public static long Domctl(Hypervisor hv, in HypercallArgs a)
    {
        if (!hv.Xen4) return Priv31(hv);
        Span<byte> op = stackalloc byte[DomctlSize];
        if (!hv.Guest.TryRead(a.A1, op)) return -Errno.EFAULT;
        if (BitConverter.ToUInt32(op[4..]) != DomctlVersion) return -Errno.EACCES;
        uint cmd = BitConverter.ToUInt32(op);
        ushort dom = BitConverter.ToUInt16(op[8..]);
        if (cmd != DomctlCreateDomain && !DomainExists(hv, dom)) return -Errno.ESRCH;
        return hv.Privileged ? -Errno.ENOSYS : -Errno.EPERM;
    }

    /// <summary>kexec_op (37): common/kexec.c asks XSM before anything else.</summary>
    public static long KexecOp(Hypervisor hv, in HypercallArgs a) => hv.Privileged ? -Errno.ENOSYS : -Errno.EPERM;

    /// <summary>xenpmu_op (40, 4.x): arch/x86/cpu/vpmu.c; the vPMU is off by default (opt_vpmu_enabled = 0).</summary>
    public static long XenpmuOp(Hypervisor hv, in HypercallArgs a) => hv.Xen4 ? -Errno.EOPNOTSUPP : -Errno.ENOSYS;

    /// <summary>hypfs_op (42, 4.14+): common/hypfs.c asks XSM first; dom0 may read the version (XEN_HYPFS_VERSION 1).</summary>
    public static long HypfsOp(Hypervisor hv, in HypercallArgs a)
    {
        if (!hv.Xen4) return -Errno.ENOSYS;
        if (!hv.Privileged) return -Errno.EPERM;
        return a.A1 == 0 ? 1 : -Errno.ENOSYS;
    }

    /// <summary>mca (48, x86_64 only): arch/x86/cpu/mcheck/mce.c asks XSM, then reads and checks the version.</summary>
    public static long Mca(Hypervisor hv, in HypercallArgs a)
    {
        if (!hv.Xen4) return -Errno.ENOSYS;
        if (!hv.Privileged) return -Errno.EPERM;
        Span<byte> op = stackalloc byte[McaSize];
        if (!hv.Guest.TryRead(a.A1, op)) return -Errno.EFAULT;
        return BitConverter.ToUInt32(op[4..]) != McaVersion ? -Errno.EACCES : -Errno.ENOSYS;
    }

    /// <summary>paging_domctl_cont (49, 4.x): arch/x86/mm/paging.c, a shadow_op domctl continuation.</summary>
    public static long PagingDomctlCont(Hypervisor hv, in HypercallArgs a)
    {
        if (!hv.Xen4) return -Errno.ENOSYS;
        Span<byte> op = stackalloc byte[DomctlSize];
        if (!hv.Guest.TryRead(a.A1, op)) return -Errno.EFAULT;
        if (BitConverter.ToUInt32(op[4..]) != DomctlVersion || BitConverter.ToUInt32(op) != DomctlShadowOp) return -Errno.EOPNOTSUPP;
        if (!DomainExists(hv, BitConverter.ToUInt16(op[8..]))) return -Errno.ESRCH;
        return hv.Privileged ? -Errno.ENOSYS : -Errno.EPERM;
    }

    /// <summary>Absent in the default build of both Xens (tmem_op 38 was removed in 4.13; argo_op 39 needs CONFIG_ARGO; dm_op 41 serves HVM device models).</summary>
    public static long Absent(Hypervisor hv, in HypercallArgs a) => -Errno.ENOSYS;

    private static long Versioned(Hypervisor hv, uint arg, int size, uint version)
    {
        if (!hv.Xen4) return Priv31(hv);
        Span<byte> op = stackalloc byte[size];
        if (!hv.Guest.TryRead(arg, op)) return -Errno.EFAULT;
        if (BitConverter.ToUInt32(op[4..]) != version) return -Errno.EACCES;
        return hv.Privileged ? -Errno.ENOSYS : -Errno.EPERM;
    }

    /// <summary>3.1: IS_PRIV first (-EPERM); the initial domain gets -ENOSYS (no toolstack behind the interface).</summary>
    private static long Priv31(Hypervisor hv) => hv.Privileged ? -Errno.ENOSYS : -Errno.EPERM;

    /// <summary>The domains that exist for rcu_lock_domain_by_id: this one and dom0 (DOMID_SELF is not an id).</summary>
    private static bool DomainExists(Hypervisor hv, ushort dom) => dom == hv.Domid || dom == 0;
}
