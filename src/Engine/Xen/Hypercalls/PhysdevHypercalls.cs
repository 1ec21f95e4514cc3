namespace Replayvisor.Engine.Xen.Hypercalls;

/// <summary>physdev_op (33) and its compat form (19) (xen/arch/x86/physdev.c, docs/xen-abi.md §12).</summary>
internal static class PhysdevHypercalls
{
    public const uint IrqUnmaskNotify = 4, IrqStatusQuery = 5, SetIopl = 6, SetIobitmap = 7, ApicRead = 8, ApicWrite = 9,
        AllocIrqVector = 10, FreeIrqVector = 11;
    private const uint IoBitmapBytes = 8192;
    private const uint NrIrqs = 256;

    public static long PhysdevOp(Hypervisor hv, in HypercallArgs a) => Execute(hv, a.A1, a.A2);

    /// <summary>The compat form: {u32 cmd; union} with the union at +4.</summary>
    public static long PhysdevOpCompat(Hypervisor hv, in HypercallArgs a)
    {
        if (!hv.Guest.TryRead32(a.A1, out uint cmd)) return -Errno.EFAULT;
        return Execute(hv, cmd, a.A1 + 4);
    }

    private static long Execute(Hypervisor hv, uint cmd, uint arg)
    {
        var v = hv.Vcpu;
        switch (cmd)
        {
            case IrqUnmaskNotify:
                return 0; // no physical IRQs to unmask
            case IrqStatusQuery:
            {
                if (!hv.Guest.TryRead32(arg, out uint irq)) return -Errno.EFAULT;
                if (irq >= NrIrqs) return -Errno.EINVAL;
                return hv.Guest.TryWrite32(arg + 4, 0) ? 0 : -Errno.EFAULT; // flags: no EOI needed, not shared
            }
            case SetIopl:
            {
                if (!hv.Guest.TryRead32(arg, out uint iopl)) return -Errno.EFAULT;
                if (iopl > 3) return -Errno.EINVAL;
                v.Iopl = (int)iopl;
                return 0;
            }
            case SetIobitmap:
            {
                if (!hv.Guest.TryRead32(arg, out uint bitmap) || !hv.Guest.TryRead32(arg + 4, out uint nrPorts)) return -Errno.EFAULT;
                if ((ulong)bitmap + IoBitmapBytes > hv.Layout.HypervisorVirtStart || nrPorts > 65536) return -Errno.EINVAL;
                v.IoBitmap = bitmap;
                v.IoBitmapPorts = nrPorts;
                return 0;
            }
            case ApicRead:
            case ApicWrite:
            case AllocIrqVector:
            case FreeIrqVector:
            {
                Span<byte> probe = stackalloc byte[1];
                if (!hv.Guest.TryRead(arg, probe)) return -Errno.EFAULT;
                return hv.Privileged ? -Errno.ENOSYS : -Errno.EPERM;
            }
            default:
                return -Errno.ENOSYS;
        }
    }
}
