namespace Replayvisor.Engine.Xen.Hypercalls;

/// <summary>vcpu_op (xen/common/domain.c do_vcpu_op, compat/domain.c compat_vcpu_op; docs/xen-model.md "Several vCPUs").</summary>
internal static class VcpuHypercalls
{
    public const uint Initialise = 0, Up = 1, Down = 2, IsUp = 3, GetRunstateInfo = 4,
        RegisterRunstateMemoryArea = 5, SetPeriodicTimer = 6, StopPeriodicTimer = 7,
        SetSingleshotTimer = 8, StopSingleshotTimer = 9, RegisterVcpuInfo = 10, SendNmi = 11;

    public static long VcpuOp(Hypervisor hv, in HypercallArgs a)
    {
        uint id = a.A2;
        // 3.1: ids past MAX_VIRT_CPUS (32) are -EINVAL, missing vCPUs -ENOENT; 4.x: domain_vcpu() → -ENOENT for both.
        if (!hv.Xen4 && id >= HypervisorOptions.MaxVcpus) return -Errno.EINVAL;
        if (id >= hv.Vcpus.Length) return -Errno.ENOENT;
        var v = hv.Vcpus[id];
        bool current = id == hv.Vcpu.Id;
        switch (a.A1)
        {
            case Initialise:
                return hv.InitialiseVcpu(v, a.A3);
            case Up:
                return hv.BringUp(v);
            case Down:
                return hv.BringDown(v);
            case IsUp:
                return v.Up ? 1 : 0;
            case GetRunstateInfo:
                return hv.Guest.TryWrite(a.A3, hv.RunstateInfo(v)) ? 0 : -Errno.EFAULT;
            case RegisterRunstateMemoryArea:
            {
                if (!hv.Guest.TryRead32(a.A3, out uint area)) return -Errno.EFAULT;
                if ((ulong)area + 44 > hv.Layout.HypervisorVirtStart) return -Errno.EFAULT;
                return hv.SetRunstateArea(v, area);
            }
            case SetPeriodicTimer:
            {
                if (!hv.Guest.TryRead64(a.A3, out ulong period)) return -Errno.EFAULT;
                if (period < 1_000_000) return -Errno.EINVAL;
                v.PeriodNs = period;
                return 0;
            }
            case StopPeriodicTimer:
                v.PeriodNs = 0;
                return 0;
            case SetSingleshotTimer:
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
            case StopSingleshotTimer:
                if (!current) return -Errno.EINVAL;
                v.SingleshotNs = 0;
                return 0;
            // VCPUOP_register_vcpu_info (10) and send_nmi (11) arrived after Xen 3.1: 3.1 answers -ENOSYS,
            // which keeps Linux 2.6.23 on the HYPERVISOR_iret return path (§8.5).
            case RegisterVcpuInfo when hv.Xen4:
                return hv.RegisterVcpuInfo(v, a.A3);
            case SendNmi when hv.Xen4:
                return hv.SendNmi(v, a.A3);
            default:
                return -Errno.ENOSYS;
        }
    }
}
