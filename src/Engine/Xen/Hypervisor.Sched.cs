namespace Replayvisor.Engine.Xen;

/// <summary>Blocking, polling and runstate (xen/common/schedule.c, docs/xen-abi.md §9).</summary>
public sealed partial class Hypervisor
{
    private ulong _blockedNs, _runstateEntryNs;

    /// <summary>VCPUOP_register_runstate_memory_area: guest VA updated at every schedule-in (0 = none).</summary>
    public uint RunstateArea { get; internal set; }

    /// <summary>Time the vcpu spent blocked so far (runstate time[2]).</summary>
    public ulong BlockedNs => _blockedNs;

    /// <summary>do_block: enable events, then block unless an event is already deliverable.</summary>
    internal long DoBlock()
    {
        int v = Vcpu.Id;
        SharedInfo.SetUpcallMask(v, 0);
        Console.Poll();
        if (SharedInfo.UpcallPending(v) != 0) return 0;
        Vcpu.Blocked = true;
        Cpu.RequestStop();
        return 0;
    }

    /// <summary>do_poll: ≤128 ports, returns at once if one is pending, else blocks without touching the mask.</summary>
    internal long DoPoll(uint portsPtr, uint nrPorts, ulong timeout)
    {
        if (nrPorts > 128) return -Errno.EINVAL;
        if ((ulong)portsPtr + (ulong)nrPorts * 4 > Layout.HypervisorVirtStart) return -Errno.EFAULT;
        Console.Poll();
        if (Xen4) return DoPoll4(portsPtr, nrPorts, timeout);
        for (uint i = 0; i < nrPorts; i++)
        {
            if (!Guest.TryRead32(portsPtr + i * 4, out uint port)) return -Errno.EFAULT;
            if (port >= EventChannels.NrPorts) return -Errno.EINVAL;
            Vcpu.PollPorts[i] = port;
            if (SharedInfo.TestPending(port)) return 0;
        }
        Vcpu.PollCount = (int)nrPorts;
        Vcpu.Blocked = true;
        Vcpu.Polling = true;
        Vcpu.PollTimeoutNs = timeout;
        Cpu.RequestStop();
        return 0;
    }

    /// <summary>
    /// do_poll of 4.x (common/sched/core.c): blocked and in poll_mask with poll_evtchn -1 first; an
    /// event already deliverable (local_events_need_delivery), an unreadable port (-EFAULT), a port
    /// past the domain's (-EINVAL) or a pending port end the poll at once. One port sets poll_evtchn
    /// to it; a non-zero timeout arms the poll timer (absolute system time; a past one fires at once).
    /// </summary>
    private long DoPoll4(uint portsPtr, uint nrPorts, ulong timeout)
    {
        var v = Vcpu;
        v.Blocked = true;
        v.Polling = true;
        v.PollEvtchn = -1;
        uint port = 0;
        if (SharedInfo.UpcallPending(v.Id) != 0 && SharedInfo.UpcallMask(v.Id) == 0) return EndPoll(v, 0);
        for (uint i = 0; i < nrPorts; i++)
        {
            if (!Guest.TryRead32(portsPtr + i * 4, out port)) return EndPoll(v, -Errno.EFAULT);
            if (port >= EventChannels.NrPorts) return EndPoll(v, -Errno.EINVAL);
            v.PollPorts[i] = port; // the 3.1 bookkeeping, kept so states hash as before
            if (SharedInfo.TestPending(port)) return EndPoll(v, 0);
        }
        v.PollCount = (int)nrPorts;
        if (nrPorts == 1) v.PollEvtchn = (int)port;
        if (timeout != 0) v.PollTimeoutNs = timeout;
        Cpu.RequestStop();
        return 0;
    }

    /// <summary>do_poll's "out": not polling, not blocked.</summary>
    private static long EndPoll(VcpuState v, long rc)
    {
        v.PollEvtchn = 0;
        v.Polling = false;
        v.Blocked = false;
        return rc;
    }

    /// <summary>The machine idled the blocked vcpu for <paramref name="ns"/> of system time.</summary>
    public void AccountBlocked(ulong ns) => _blockedNs += ns;

    /// <summary>vcpu_runstate_info (44 bytes): running now; time[0] running, time[2] blocked.</summary>
    internal byte[] RunstateInfo()
    {
        ulong now = NowNs;
        var b = new byte[44];
        BitConverter.TryWriteBytes(b.AsSpan(0), 0);
        BitConverter.TryWriteBytes(b.AsSpan(4), _runstateEntryNs);
        BitConverter.TryWriteBytes(b.AsSpan(12), now - _blockedNs);
        BitConverter.TryWriteBytes(b.AsSpan(28), _blockedNs);
        return b;
    }

    /// <summary>Called by the machine when a blocked vcpu becomes runnable again.</summary>
    public void Wake()
    {
        _runstateEntryNs = NowNs;
        SyncRunstates();
        if (RunstateArea != 0) Guest.TryWrite(RunstateArea, Smp ? _runstates[_current].Encode(null) : RunstateInfo());
        ScheduleIn();
    }
}
