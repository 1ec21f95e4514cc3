using System.Text;

namespace Replayvisor.Engine.Xen.Hypercalls;

/// <summary>xen_version (xen/common/kernel.c, xen-abi.md §5): all XENVER_ commands of 3.1, version 3.1.</summary>
internal static class VersionHypercall
{
    public const string ExtraVersion = ".0";
    public const string Compiler = "gcc version 4.1.2 (Replayvisor Xen model)";
    public const string CompileBy = "replayvisor";
    public const string CompileDomain = "replayvisor.invalid";
    public const string CompileDate = "Fri May 18 16:59:32 UTC 2007";
    public const string Changeset = "unavailable";

    public static long XenVersion(Hypervisor hv, in HypercallArgs a)
    {
        uint arg = a.A2;
        switch (a.A1)
        {
            case 0: return Hypervisor.XenVersion;
            case 1: return Put(hv, arg, Fixed(ExtraVersion, 16));
            case 2:
            {
                var b = new byte[144];
                Fixed(Compiler, 64).CopyTo(b, 0);
                Fixed(CompileBy, 16).CopyTo(b, 64);
                Fixed(CompileDomain, 32).CopyTo(b, 80);
                Fixed(CompileDate, 32).CopyTo(b, 112);
                return Put(hv, arg, b);
            }
            case 3: return Put(hv, arg, Fixed(hv.Layout.StartInfoMagic + " ", 1024));
            case 4: return Put(hv, arg, Fixed(Changeset, 64));
            case 5: return Put(hv, arg, BitConverter.GetBytes(hv.Layout.HypervisorVirtStart));
            case 6:
            {
                if (!hv.Guest.TryRead32(arg, out uint idx)) return -Errno.EFAULT;
                if (idx != 0) return -Errno.EINVAL;
                // 3.1 reports pae_pgdir_above_4gb only, and only with VMASST pae_extended_cr3 on.
                uint submap = (hv.Mm.VmAssist & (1u << 3)) != 0 ? 1u << 4 : 0;
                return hv.Guest.TryWrite32(arg + 4, submap) ? 0 : -Errno.EFAULT;
            }
            case 7: return arg != 0 ? -Errno.EINVAL : 4096;
            case 8: return Put(hv, arg, new byte[16]); // the domain handle (UUID): all zero
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
