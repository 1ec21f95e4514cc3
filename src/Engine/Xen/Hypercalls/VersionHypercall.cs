using System.Text;

namespace Replayvisor.Engine.Xen.Hypercalls;

/// <summary>
/// xen_version (xen/common/kernel.c do_xen_version; compat guests go through
/// xen/common/compat/kernel.c, which differs only in platform_parameters). Xen 3.1 answers
/// commands 0-8; Xen 4.19 adds commandline (9) and build_id (10) and, through XSM's default
/// policy (xen/include/xsm/dummy.h xsm_xen_version), denies those two to an unprivileged domain:
/// commandline then reads "&lt;denied&gt;" and build_id gives -EPERM.
/// </summary>
internal static class VersionHypercall
{
    public const uint Version = 0, ExtraVersionCmd = 1, CompileInfo = 2, Capabilities = 3, ChangesetCmd = 4,
        PlatformParameters = 5, GetFeatures = 6, PageSize = 7, GuestHandle = 8, CommandLine = 9, BuildId = 10;

    public const string ExtraVersion = ".0";
    public const string Compiler31 = "gcc version 4.1.2 (Replayvisor Xen model)";
    public const string Compiler419 = "gcc (Debian 12.2.0-14) 12.2.0 (Replayvisor Xen model)";
    public const string CompileBy = "replayvisor";
    public const string CompileDomain = "replayvisor.invalid";
    public const string CompileDate31 = "Fri May 18 16:59:32 UTC 2007";
    public const string CompileDate419 = "Mon Jul 29 10:00:00 UTC 2024";
    public const string Changeset = "unavailable";
    /// <summary>xen_deny() (xen/common/version.c).</summary>
    public const string Denied = "<denied>";
    /// <summary>arch_get_xen_caps on a 64-bit host without HVM: the model is a PV-only host.</summary>
    public const string Capabilities419 = "xen-3.0-x86_64 xen-3.0-x86_32p";

    /// <summary>XENFEAT_* bits (public/features.h).</summary>
    public const int FeatPaePgdirAbove4gb = 4, FeatMmuPtUpdatePreserveAd = 5, FeatHighmemAssist = 6,
        FeatGnttabMapAvailBits = 7, FeatDom0 = 11, FeatMemoryOpVnodeSupported = 13;

    public static long XenVersion(Hypervisor hv, in HypercallArgs a)
    {
        uint arg = a.A2;
        bool xen4 = hv.Xen4;
        switch (a.A1)
        {
            case Version: return hv.XenVersion;
            case ExtraVersionCmd: return Put(hv, arg, Fixed(ExtraVersion, 16));
            case CompileInfo:
            {
                var b = new byte[144];
                Fixed(xen4 ? Compiler419 : Compiler31, 64).CopyTo(b, 0);
                Fixed(CompileBy, 16).CopyTo(b, 64);
                Fixed(CompileDomain, 32).CopyTo(b, 80);
                Fixed(xen4 ? CompileDate419 : CompileDate31, 32).CopyTo(b, 112);
                return Put(hv, arg, b);
            }
            case Capabilities: return Put(hv, arg, Fixed(xen4 ? Capabilities419 : hv.Layout.StartInfoMagic + " ", 1024));
            case ChangesetCmd: return Put(hv, arg, Fixed(Changeset, 64));
            // compat: HYPERVISOR_COMPAT_VIRT_START(d), the same address the 3.1 layout uses.
            case PlatformParameters: return Put(hv, arg, BitConverter.GetBytes(hv.Layout.HypervisorVirtStart));
            case GetFeatures:
            {
                if (!hv.Guest.TryRead32(arg, out uint idx)) return -Errno.EFAULT;
                if (idx != 0) return -Errno.EINVAL;
                bool extendedCr3 = (hv.Mm.VmAssist & (1u << 3)) != 0;
                uint submap = extendedCr3 ? 1u << FeatPaePgdirAbove4gb : 0;
                // 3.1 reports pae_pgdir_above_4gb only; 4.19 adds the PV features and dom0.
                if (xen4)
                {
                    submap |= 1u << FeatMemoryOpVnodeSupported | 1u << FeatMmuPtUpdatePreserveAd
                        | 1u << FeatHighmemAssist | 1u << FeatGnttabMapAvailBits;
                    if (hv.Privileged) submap |= 1u << FeatDom0;
                }
                return hv.Guest.TryWrite32(arg + 4, submap) ? 0 : -Errno.EFAULT;
            }
            case PageSize: return arg != 0 ? -Errno.EINVAL : 4096;
            case GuestHandle: return Put(hv, arg, new byte[16]); // the domain handle (UUID): all zero
            case CommandLine when xen4:
                // Xen's own command line (empty here), 1024 bytes; strlen("<denied>") + 1 bytes when denied.
                return hv.Privileged ? Put(hv, arg, new byte[1024]) : Put(hv, arg, Fixed(Denied, Denied.Length + 1));
            case BuildId when xen4:
                return hv.Privileged ? -Errno.ENODATA : -Errno.EPERM; // the model's Xen has no build id
            default: return -Errno.ENOSYS;
        }
    }

    private static byte[] Fixed(string s, int size)
    {
        var b = new byte[size];
        Encoding.ASCII.GetBytes(s).AsSpan(0, Math.Min(s.Length, size - 1)).CopyTo(b);
        return b;
    }

    private static long Put(Hypervisor hv, uint arg, byte[] data) => hv.Guest.TryWrite(arg, data) ? 0 : -Errno.EFAULT;
}
