namespace Replayvisor.Engine.Xen.Hypercalls;

/// <summary>Scheduling, shutdown, timers and vcpu ops (xen/common/schedule.c, domain.c; docs/xen-abi.md §9).</summary>
internal static class SchedHypercalls
{
    public const uint Yield = 0, Block = 1, Shutdown = 2, Poll = 3, RemoteShutdown = 4;

    public static long SchedOpCompat(Hypervisor hv, in HypercallArgs a) => a.A1 switch
    {
        Yield => 0,
        Block => hv.DoBlock(),
        Shutdown => DoShutdown(hv, a.A2),
        _ => -Errno.ENOSYS,
    };

    public static long SchedOp(Hypervisor hv, in HypercallArgs a)
    {
        switch (a.A1)
        {
            case Yield:
                return 0;
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

    public const uint VcpuInitialise = 0, VcpuUp = 1, VcpuDown = 2, VcpuIsUp = 3, VcpuGetRunstateInfo = 4,
        VcpuRegisterRunstateMemoryArea = 5, VcpuSetPeriodicTimer = 6, VcpuStopPeriodicTimer = 7,
        VcpuSetSingleshotTimer = 8, VcpuStopSingleshotTimer = 9, VcpuRegisterVcpuInfo = 10, VcpuSendNmi = 11;

    public static long VcpuOp(Hypervisor hv, in HypercallArgs a)
    {
        uint id = a.A2;
        if (id >= 32) return -Errno.EINVAL;
        if (id >= hv.Vcpus.Length) return -Errno.ENOENT;
        var v = hv.Vcpus[id];
        bool current = id == hv.Vcpu.Id;
        switch (a.A1)
        {
            case VcpuInitialise:
            {
                Span<byte> probe = stackalloc byte[1];
                if (!hv.Guest.TryRead(a.A3, probe) || !hv.Guest.TryRead(a.A3 + 2799, probe)) return -Errno.EFAULT;
                return -Errno.EEXIST; // the only vcpu is initialised
            }
            case VcpuUp:
                v.Up = true;
                return 0;
            case VcpuDown:
                // Taking the only vcpu down would stop the domain forever; refuse as an unsupported op.
                return current ? -Errno.EINVAL : 0;
            case VcpuIsUp:
                return v.Up ? 1 : 0;
            case VcpuGetRunstateInfo:
                return hv.Guest.TryWrite(a.A3, hv.RunstateInfo()) ? 0 : -Errno.EFAULT;
            case VcpuRegisterRunstateMemoryArea:
            {
                if (!hv.Guest.TryRead32(a.A3, out uint area)) return -Errno.EFAULT;
                if ((ulong)area + 44 > hv.Layout.HypervisorVirtStart) return -Errno.EFAULT;
                hv.RunstateArea = area;
                if (current) hv.Guest.TryWrite(area, hv.RunstateInfo());
                return 0;
            }
            case VcpuSetPeriodicTimer:
            {
                if (!hv.Guest.TryRead64(a.A3, out ulong period)) return -Errno.EFAULT;
                if (period < 1_000_000) return -Errno.EINVAL;
                v.PeriodNs = period;
                return 0;
            }
            case VcpuStopPeriodicTimer:
                v.PeriodNs = 0;
                return 0;
            case VcpuSetSingleshotTimer:
            {
                if (!current) return -Errno.EINVAL;
                Span<byte> s = stackalloc byte[12];
                if (!hv.Guest.TryRead(a.A3, s)) return -Errno.EFAULT;
                ulong timeout = BitConverter.ToUInt64(s);
                uint flags = BitConverter.ToUInt32(s[8..]);
                if ((flags & 1) != 0 && (long)timeout < (long)hv.NowNs) return -Errno.ETIME;
                v.SingleshotNs = Math.Max(timeout, 1); // no 100 ms workaround here (set_timer directly)
                return 0;
            }
            case VcpuStopSingleshotTimer:
                if (!current) return -Errno.EINVAL;
                v.SingleshotNs = 0;
                return 0;
            // VCPUOP_register_vcpu_info (10) and send_nmi (11) arrived in Xen 3.2: 3.1 answers -ENOSYS,
            // which keeps Linux 2.6.23 on the HYPERVISOR_iret return path (§8.5).
            default:
                return -Errno.ENOSYS;
        }
    }
}
