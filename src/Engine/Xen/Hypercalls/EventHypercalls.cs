namespace Replayvisor.Engine.Xen.Hypercalls;

/// <summary>event_channel_op (32) and its compat form (16) (xen/common/event_channel.c, xen-abi.md §4.5, §9).</summary>
internal static class EventHypercalls
{
    public const uint BindInterdomain = 0, BindVirq = 1, BindPirq = 2, Close = 3, Send = 4, Status = 5,
        AllocUnbound = 6, BindIpi = 7, BindVcpu = 8, Unmask = 9, Reset = 10,
        InitControl = 11, ExpandArray = 12, SetPriority = 13, ResetCont = 14;

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
        if (hv.Xen4 && a.A1 is >= InitControl and <= ResetCont) return FifoOp(hv, a.A1, a.A2);
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

    /// <summary>
    /// The FIFO ABI's ops (4.4+; xen/common/event_channel.c, event_fifo.c) as Xen answers a domain
    /// that stays on the 2-level ABI: init_control validates its arguments (vcpu -ENOENT, an offset
    /// past the page or not 8-byte aligned -EINVAL, a control frame that is not a writable RAM page of
    /// the domain -EINVAL), expand_array before a successful init_control is -EOPNOTSUPP,
    /// set_priority is -EINVAL for a bad port and -ENOSYS on the 2-level ABI, and reset_cont is reset.
    /// A control block that would be accepted is answered -ENOSYS, as Xen before 4.4 answered it: the
    /// model has only the 2-level ABI (docs/xen-model.md), and guests then fall back to it.
    /// </summary>
    private static long FifoOp(Hypervisor hv, uint cmd, uint arg)
    {
        switch (cmd)
        {
            case InitControl:
            {
                Span<byte> ic = stackalloc byte[24]; // control_gfn u64, offset u32, vcpu u32, link_bits u8, pad[7]
                if (!hv.Guest.TryRead(arg, ic)) return -Errno.EFAULT;
                ulong gfn = BitConverter.ToUInt64(ic);
                uint offset = BitConverter.ToUInt32(ic[8..]), vcpu = BitConverter.ToUInt32(ic[12..]);
                if (vcpu >= (uint)hv.Vcpus.Length) return -Errno.ENOENT;
                if (offset > 4096 - 64 || (offset & 7) != 0) return -Errno.EINVAL; // evtchn_fifo_control_block_t is 64 bytes
                if (!hv.Mm.CanMapWritable(gfn)) return -Errno.EINVAL; // a PV domain's gfn is its mfn

                return -Errno.ENOSYS;
            }
            case ExpandArray:
                return hv.Guest.TryRead(arg, stackalloc byte[8]) ? -Errno.EOPNOTSUPP : -Errno.EFAULT;
            case SetPriority:
            {
                if (!hv.Guest.TryRead32(arg, out uint port) || !hv.Guest.TryRead32(arg + 4, out _)) return -Errno.EFAULT;
                return port >= EventChannels.NrPorts ? -Errno.EINVAL : -Errno.ENOSYS;
            }
            default: // ResetCont: the same as reset (10) for a domain as small as this one
            {
                Span<byte> dom = stackalloc byte[2];
                if (!hv.Guest.TryRead(arg, dom)) return -Errno.EFAULT;
                return hv.Events.Reset(BitConverter.ToUInt16(dom));
            }
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
