using System.Runtime.CompilerServices;
using System.Buffers.Binary;
using Replayvisor.Engine.State;

namespace Replayvisor.Engine.Xen;

/// <summary>EVTCHNSTAT_* / ECS_* (docs/xen-abi.md §4.5).</summary>
public enum PortState : byte { Free = 0, Unbound = 1, Interdomain = 2, Pirq = 3, Virq = 4, Ipi = 5, Reserved = 6 }

/// <summary>One event channel (Xen's struct evtchn).</summary>
public struct Channel
{
    public PortState State;
    public int NotifyVcpu;
    /// <summary>Unbound: the domain allowed to bind. Interdomain: the peer domain.</summary>
    public ushort RemoteDom;
    public uint RemotePort;
    public int Virq;
    public uint Pirq;
}

/// <summary>
/// The domain's event channels (xen/common/event_channel.c, docs/xen-abi.md §9): ports 0..1023, port 0
/// reserved, the two-level pending bitmap in shared_info. Interdomain peers are this domain
/// (loopback) or the backend domain 0, which the model plays (xenstored, xenconsoled).
/// </summary>
public sealed class EventChannels : IStateHashable
{
    public const int NrPorts = 1024;
    public const ushort DomidSelf = 0x7FF0;
    public const ushort BackendDomid = 0;

    private readonly Channel[] _ch = new Channel[NrPorts];
    private readonly SharedInfoPage _si;
    private readonly VcpuState[] _vcpus;
    private readonly Action<uint> _notifyBackend;

    public EventChannels(SharedInfoPage si, VcpuState[] vcpus, ushort domid, bool privileged, Action<uint> notifyBackend)
    {
        _si = si;
        _vcpus = vcpus;
        Domid = domid;
        Privileged = privileged;
        _notifyBackend = notifyBackend;
        _ch[0].State = PortState.Reserved;
    }

    public ushort Domid { get; }
    public bool Privileged { get; }
    public ReadOnlySpan<Channel> Channels => _ch;
    public ref Channel this[uint port] => ref _ch[port];

    /// <summary>Called when a vcpu's evtchn_upcall_pending goes 0→1 or a poller must wake (vcpu_kick).</summary>
    public event Action<int>? Kick;

    public static bool IsGlobalVirq(int virq) => virq is not (0 or 1 or 7); // TIMER, DEBUG, XENOPROF are per-vcpu

    private bool ValidVcpu(uint vcpu) => vcpu < (uint)_vcpus.Length && _vcpus[vcpu] != null;

    private int GetFreePort()
    {
        for (int p = 0; p < NrPorts; p++)
            if (_ch[p].State == PortState.Free) return p;
        return -Errno.ENOSPC;
    }

    /// <summary>Creates an interdomain port already connected to the backend (the builder's store/console ports).</summary>
    public void ConnectToBackend(uint port, uint backendPort)
    {
        _ch[port] = new Channel { State = PortState.Interdomain, RemoteDom = BackendDomid, RemotePort = backendPort };
    }

    /// <summary>
    /// 4.x pollers (evtchn_check_pollers, common/event_channel.c): a vCPU polling one port wakes only
    /// when that port becomes pending, one polling several (or none) on any port; its poll_mask bit
    /// survives a wake by vcpu_kick. 3.1 wakes every poller on any port and clears its polling flag
    /// on every wake (docs/xen-model.md "SCHEDOP_poll").
    /// </summary>
    public bool PerPortPollers { get; init; }

    /// <summary>evtchn_set_pending (§9): the two-level bitmap, then upcall_pending and a kick; wakes pollers.</summary>
    public void SetPending(int vcpu, uint port)
    {
        if (_si.TestAndSetPending(port)) return;
        if (!_si.TestMasked(port) && !_si.TestAndSetSel(vcpu, (int)(port >> 5)))
            MarkEventsPending(vcpu);
        if (!PerPortPollers)
        {
            foreach (var v in _vcpus)
                if (v.Polling) { v.Polling = false; v.Blocked = false; Kick?.Invoke(v.Id); }
            return;
        }
        foreach (var v in _vcpus)
        {
            if (!v.Polling || (v.PollEvtchn > 0 && v.PollEvtchn != port)) continue;
            v.Polling = false;
            v.PollEvtchn = 0;
            Unblock(v);
        }
    }

    /// <summary>vcpu_mark_events_pending: upcall_pending 0→1 kicks (unblocks) the vcpu.</summary>
    public void MarkEventsPending(int vcpu)
    {
        if (_si.UpcallPending(vcpu) != 0) return;
        _si.SetUpcallPending(vcpu, 1);
        if (PerPortPollers)
        {
            Unblock(_vcpus[vcpu]);
            return;
        }
        _vcpus[vcpu].Blocked = false;
        _vcpus[vcpu].Polling = false;
        Kick?.Invoke(vcpu);
    }

    /// <summary>vcpu_kick / vcpu_unblock: a blocked (or polling) vCPU becomes runnable; its poll_mask bit stays.</summary>
    public void Unblock(VcpuState v)
    {
        if (!v.Blocked) return;
        v.Blocked = false;
        Kick?.Invoke(v.Id);
    }

    /// <summary>A notification from the backend on its end of <paramref name="port"/>.</summary>
    public void NotifyFromBackend(uint port)
    {
        ref Channel c = ref _ch[port];
        if (c.State == PortState.Interdomain && c.RemoteDom == BackendDomid) SetPending(c.NotifyVcpu, port);
    }

    /// <summary>send_guest_vcpu_virq / send_guest_global_virq: nothing happens if the VIRQ is unbound.</summary>
    public void RaiseVirq(int vcpu, int virq)
    {
        int target = IsGlobalVirq(virq) ? 0 : vcpu;
        uint port = _vcpus[target].VirqPort[virq];
        if (port == 0) return;
        SetPending(_ch[port].NotifyVcpu, port);
    }

    public long AllocUnbound(ushort dom, ushort remoteDom, out uint port)
    {
        port = 0;
        if (dom != DomidSelf)
        {
            if (!Privileged) return -Errno.EPERM;
            if (dom != Domid) return -Errno.ESRCH;
        }
        int p = GetFreePort();
        if (p < 0) return p;
        _ch[p] = new Channel { State = PortState.Unbound, RemoteDom = remoteDom == DomidSelf ? Domid : remoteDom };
        port = (uint)p;
        return 0;
    }

    public long BindInterdomain(ushort remoteDom, uint remotePort, out uint port)
    {
        port = 0;
        if (remoteDom == DomidSelf) remoteDom = Domid;
        if (remoteDom != Domid && remoteDom != BackendDomid) return -Errno.ESRCH;
        int p = GetFreePort();
        if (p < 0) return p;
        // The backend has no unbound ports to offer; a loopback needs an unbound port of ours that names us.
        if (remoteDom != Domid || remotePort >= NrPorts || (int)remotePort == p) return -Errno.EINVAL;
        ref Channel r = ref _ch[remotePort];
        if (r.State != PortState.Unbound || r.RemoteDom != Domid) return -Errno.EINVAL;
        _ch[p] = new Channel { State = PortState.Interdomain, RemoteDom = Domid, RemotePort = remotePort };
        r.State = PortState.Interdomain;
        r.RemoteDom = Domid;
        r.RemotePort = (uint)p;
        // "We may have lost notifications on the remote unbound port": Xen sets the local port pending.
        SetPending(_ch[p].NotifyVcpu, (uint)p);
        port = (uint)p;
        return 0;
    }

    public long BindVirq(uint virq, uint vcpu, out uint port)
    {
        port = 0;
        if (virq >= VcpuState.NrVirqs) return -Errno.EINVAL;
        if (IsGlobalVirq((int)virq) && vcpu != 0) return -Errno.EINVAL;
        if (!ValidVcpu(vcpu)) return -Errno.ENOENT;
        var v = _vcpus[vcpu];
        if (v.VirqPort[virq] != 0) return -Errno.EEXIST;
        int p = GetFreePort();
        if (p < 0) return p;
        _ch[p] = new Channel { State = PortState.Virq, NotifyVcpu = (int)vcpu, Virq = (int)virq };
        v.VirqPort[virq] = (uint)p;
        port = (uint)p;
        return 0;
    }

    public long BindIpi(uint vcpu, out uint port)
    {
        port = 0;
        if (!ValidVcpu(vcpu)) return -Errno.ENOENT;
        int p = GetFreePort();
        if (p < 0) return p;
        _ch[p] = new Channel { State = PortState.Ipi, NotifyVcpu = (int)vcpu };
        port = (uint)p;
        return 0;
    }

    /// <summary>bind_pirq: a domU has no physical IRQs.</summary>
    public long BindPirq() => Privileged ? -Errno.ENOSYS : -Errno.EPERM;

    public long Close(uint port)
    {
        if (port >= NrPorts) return -Errno.EINVAL;
        ref Channel c = ref _ch[port];
        switch (c.State)
        {
            case PortState.Free:
            case PortState.Reserved:
                return -Errno.EINVAL;
            case PortState.Virq:
                if (_vcpus[c.NotifyVcpu].VirqPort[c.Virq] == port) _vcpus[c.NotifyVcpu].VirqPort[c.Virq] = 0;
                foreach (var v in _vcpus) if (v.VirqPort[c.Virq] == port) v.VirqPort[c.Virq] = 0;
                break;
            case PortState.Interdomain:
                if (c.RemoteDom == Domid && c.RemotePort < NrPorts && c.RemotePort != port)
                {
                    ref Channel r = ref _ch[c.RemotePort];
                    r.State = PortState.Unbound;
                    r.RemoteDom = Domid;
                    r.RemotePort = 0;
                }
                break;
        }
        c = default;
        return 0;
    }

    public long Send(uint port)
    {
        if (port >= NrPorts) return -Errno.EINVAL;
        ref Channel c = ref _ch[port];
        switch (c.State)
        {
            case PortState.Interdomain:
                if (c.RemoteDom == BackendDomid && c.RemoteDom != Domid) _notifyBackend(port);
                else SetPending(_ch[c.RemotePort].NotifyVcpu, c.RemotePort);
                return 0;
            case PortState.Ipi:
                SetPending(c.NotifyVcpu, port);
                return 0;
            case PortState.Unbound:
                return 0; // silently dropped
            default:
                return -Errno.EINVAL;
        }
    }

    public long BindVcpu(uint port, uint vcpu)
    {
        if (!ValidVcpu(vcpu)) return -Errno.ENOENT;
        if (port >= NrPorts) return -Errno.EINVAL;
        ref Channel c = ref _ch[port];
        switch (c.State)
        {
            case PortState.Virq:
                if (!IsGlobalVirq(c.Virq)) return -Errno.EINVAL;
                c.NotifyVcpu = (int)vcpu;
                return 0;
            case PortState.Unbound:
            case PortState.Interdomain:
            case PortState.Pirq:
                c.NotifyVcpu = (int)vcpu;
                return 0;
            default:
                return -Errno.EINVAL;
        }
    }

    public long Unmask(uint port)
    {
        if (port >= NrPorts) return -Errno.EINVAL;
        int v = _ch[port].NotifyVcpu;
        if (_si.TestAndClearMask(port) && _si.TestPending(port) && !_si.TestAndSetSel(v, (int)(port >> 5)))
            MarkEventsPending(v);
        return 0;
    }

    public long Reset(ushort dom)
    {
        if (dom != DomidSelf)
        {
            if (!Privileged) return -Errno.EPERM;
            if (dom != Domid) return -Errno.ESRCH;
        }
        for (uint p = 1; p < NrPorts; p++)
            if (_ch[p].State != PortState.Free) Close(p);
        return 0;
    }

    /// <summary>A copy of every port's channel, port 0 first (plain data for a snapshot).</summary>
    public Channel[] SnapshotChannels() => (Channel[])_ch.Clone();

    /// <summary>Restores every port from <see cref="SnapshotChannels"/> (the pending/mask bits live in shared_info, i.e. RAM).</summary>
    public void RestoreChannels(Channel[] channels)
    {
        ArgumentNullException.ThrowIfNull(channels);
        if (channels.Length != NrPorts) throw new ArgumentException($"expected {NrPorts} channels", nameof(channels));
        channels.CopyTo(_ch, 0);
    }

    /// <summary>Every port in port order, every field (a free port is all zeros).</summary>
    // Full optimisation from the first call: a recording hashes only at checkpoints, too rarely for tiered JIT to reach this loop.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void WriteState(CanonicalWriter w)
    {
        ArgumentNullException.ThrowIfNull(w);
        w.Tag("evtchn");
        w.U16(Domid);
        w.Bool(Privileged);
        w.U32(NrPorts);
        foreach (ref readonly Channel c in _ch.AsSpan())
        {
            // u8 State, i32 NotifyVcpu, u16 RemoteDom, u32 RemotePort, i32 Virq, u32 Pirq: 19 bytes.
            var b = w.Fixed(19);
            b[0] = (byte)c.State;
            BinaryPrimitives.WriteInt32LittleEndian(b[1..], c.NotifyVcpu);
            BinaryPrimitives.WriteUInt16LittleEndian(b[5..], c.RemoteDom);
            BinaryPrimitives.WriteUInt32LittleEndian(b[7..], c.RemotePort);
            BinaryPrimitives.WriteInt32LittleEndian(b[11..], c.Virq);
            BinaryPrimitives.WriteUInt32LittleEndian(b[15..], c.Pirq);
        }
    }

    /// <summary>Ports pending and unmasked now (for the upcall trace record).</summary>
    public uint[] PendingUnmaskedPorts()
    {
        var ports = new uint[NrPorts];
        return ports[..PendingUnmaskedPorts(ports)];
    }

    /// <summary>Writes the ports pending and unmasked now to <paramref name="into"/> (room for <see cref="NrPorts"/>), in port order; returns how many.</summary>
    public int PendingUnmaskedPorts(Span<uint> into) => _si.PendingUnmasked(into, NrPorts);
}
