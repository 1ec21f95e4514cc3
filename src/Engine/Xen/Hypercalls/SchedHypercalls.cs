namespace Replayvisor.Engine.Xen.Hypercalls;

/// <summary>Scheduling, shutdown, timers and vcpu ops (xen/common/schedule.c, domain.c; docs/xen-abi.md §9).</summary>
internal static class SchedHypercalls
{
    public const uint Yield = 0, Block = 1, Shutdown = 2, Poll = 3, RemoteShutdown = 4;

    public static long SchedOpCompat(Hypervisor hv, in HypercallArgs a) => a.A1 switch
    {
        Yield => hv.DoYield(),
        Block => hv.DoBlock(),
        Shutdown => DoShutdown(hv, a.A2),
        _ => -Errno.ENOSYS,
    };

    public static long SchedOp(Hypervisor hv, in HypercallArgs a)
    {
        switch (a.A1)
        {
            case Yield:
                return hv.DoYield();
            case Block:
                return hv.DoBlock();
            case Shutdown:
            {
                if (!hv.Guest.TryRead32(a.A2, out uint reason)) return -Errno.EFAULT;
                return DoShutdown(hv, reason);
            }
            case Poll:
            {
                Span<byte> p = stackalloc byte[16];
                if (!hv.Guest.TryRead(a.A2, p)) return -Errno.EFAULT;
                return hv.DoPoll(BitConverter.ToUInt32(p), BitConverter.ToUInt32(p[4..]), BitConverter.ToUInt64(p[8..]));
            }
            case RemoteShutdown:
            {
                Span<byte> p = stackalloc byte[8];
                if (!hv.Guest.TryRead(a.A2, p)) return -Errno.EFAULT;
                if (!hv.Privileged) return -Errno.EPERM;
                ushort dom = BitConverter.ToUInt16(p);
                if (dom != hv.Domid) return -Errno.ESRCH;
                return DoShutdown(hv, BitConverter.ToUInt32(p[4..]));
            }
            default:
                return -Errno.ENOSYS;
        }
    }

    /// <summary>domain_shutdown(d, (u8)reason): the domain stops; the hypercall "returns" 0.</summary>
    private static long DoShutdown(Hypervisor hv, uint reason)
    {
        hv.RequestShutdown(reason & 0xFF);
        return 0;
    }

    public static long SetTimerOp(Hypervisor hv, in HypercallArgs a)
    {
        hv.SetSingleshot(HypercallArgs.Pair(a.A1, a.A2));
        return 0;
    }
}
