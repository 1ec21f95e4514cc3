namespace Replayvisor.Engine.Xen.Hypercalls;

/// <summary>event_channel_op (32) and its compat form (16) (xen/common/event_channel.c, xen-abi.md §4.5, §9).</summary>
internal static class EventHypercalls
{
    public const uint BindInterdomain = 0, BindVirq = 1, BindPirq = 2, Close = 3, Send = 4, Status = 5,
        AllocUnbound = 6, BindIpi = 7, BindVcpu = 8, Unmask = 9, Reset = 10;

    /// <summary>Size of each op's argument struct (§4.5).</summary>
    internal static int ArgSize(uint cmd) => cmd switch
    {
        BindInterdomain or BindVirq or BindPirq => 12,
        Close or Send or Unmask => 4,
        Status => 24,
        AllocUnbound or BindIpi or BindVcpu => 8,
        Reset => 2,
        _ => 0,
    };

    public static long EventChannelOp(Hypervisor hv, in HypercallArgs a)
    {
        int size = ArgSize(a.A1);
        if (size == 0) return -Errno.ENOSYS;
        Span<byte> arg = stackalloc byte[24];
        arg = arg[..size];
        if (!hv.Guest.TryRead(a.A2, arg)) return -Errno.EFAULT;
        long rc = Execute(hv, a.A1, arg, out bool writeBack);
        if (rc == 0 && writeBack && !hv.Guest.TryWrite(a.A2, arg)) return -Errno.EFAULT;
        return rc;
    }

    /// <summary>The compat form: a 28-byte evtchn_op {cmd, union}; the whole op is copied back for ops with outputs.</summary>
    public static long EventChannelOpCompat(Hypervisor hv, in HypercallArgs a)
    {
        Span<byte> op = stackalloc byte[28];
        if (!hv.Guest.TryRead(a.A1, op)) return -Errno.EFAULT;
        uint cmd = BitConverter.ToUInt32(op);
        int size = ArgSize(cmd);
        if (size == 0) return -Errno.ENOSYS;
        long rc = Execute(hv, cmd, op.Slice(4, size), out bool writeBack);
        if (rc == 0 && writeBack && !hv.Guest.TryWrite(a.A1, op)) return -Errno.EFAULT;
        return rc;
    }

    private static long Execute(Hypervisor hv, uint cmd, Span<byte> arg, out bool writeBack)
    {
        var ev = hv.Events;
        writeBack = false;
        long rc;
        uint port;
        switch (cmd)
        {
            case BindInterdomain:
                rc = ev.BindInterdomain(U16(arg, 0), U32(arg, 4), out port);
                Put(arg, 8, port);
                writeBack = true;
                return rc;
            case BindVirq:
                rc = ev.BindVirq(U32(arg, 0), U32(arg, 4), out port);
                Put(arg, 8, port);
                writeBack = true;
                return rc;
            case BindPirq:
                return ev.BindPirq();
            case Close:
                return ev.Close(U32(arg, 0));
            case Send:
                return ev.Send(U32(arg, 0));
            case Status:
                writeBack = true;
                return StatusOp(ev, arg);
            case AllocUnbound:
                rc = ev.AllocUnbound(U16(arg, 0), U16(arg, 2), out port);
                Put(arg, 4, port);
                writeBack = true;
                return rc;
            case BindIpi:
                rc = ev.BindIpi(U32(arg, 0), out port);
                Put(arg, 4, port);
                writeBack = true;
                return rc;
            case BindVcpu:
                return ev.BindVcpu(U32(arg, 0), U32(arg, 4));
            case Unmask:
                return ev.Unmask(U32(arg, 0));
            case Reset:
                return ev.Reset(U16(arg, 0));
            default:
                return -Errno.ENOSYS;
        }
    }

    private static long StatusOp(EventChannels ev, Span<byte> arg)
    {
        ushort dom = U16(arg, 0);
        uint port = U32(arg, 4);
        if (dom != EventChannels.DomidSelf)
        {
            if (!ev.Privileged) return -Errno.EPERM;
            if (dom != ev.Domid) return -Errno.ESRCH;
        }
        if (port >= EventChannels.NrPorts) return -Errno.EINVAL;
        var c = ev.Channels[(int)port];
        arg[12..].Clear();
        uint status = c.State switch
        {
            PortState.Free or PortState.Reserved => 0,
            _ => (uint)c.State,
        };
        Put(arg, 8, status);
        switch (c.State)
        {
            case PortState.Unbound: Put16(arg, 16, c.RemoteDom); break;
            case PortState.Interdomain: Put16(arg, 16, c.RemoteDom); Put(arg, 20, c.RemotePort); break;
            case PortState.Pirq: Put(arg, 16, c.Pirq); break;
            case PortState.Virq: Put(arg, 16, (uint)c.Virq); break;
        }
        Put(arg, 12, (uint)c.NotifyVcpu);
        return 0;
    }

    private static ushort U16(Span<byte> s, int o) => BitConverter.ToUInt16(s[o..]);
    private static uint U32(Span<byte> s, int o) => BitConverter.ToUInt32(s[o..]);
    private static void Put(Span<byte> s, int o, uint v) => BitConverter.TryWriteBytes(s[o..], v);
    private static void Put16(Span<byte> s, int o, ushort v) => BitConverter.TryWriteBytes(s[o..], v);
}
