using Replayvisor.Engine.State;

namespace Replayvisor.Engine.Xen;

/// <summary>One trap_info slot (docs/xen-abi.md §4.4, §8.1): flags bits 0-1 = DPL, bit 2 = mask events.</summary>
public struct TrapInfo
{
    public byte Flags;
    public ushort Cs;
    public uint Address;
    public readonly int Dpl => Flags & 3;
    public readonly bool MasksEvents => (Flags & 4) != 0;
}

/// <summary>A callback entry point (set_callbacks / callback_op).</summary>
public struct Callback
{
    public ushort Cs;
    public uint Eip;
}

/// <summary>
/// Xen's per-vcpu state that is not in CPU registers: trap table, callbacks, kernel stack, virtual
/// TS/IOPL/CR2, debug registers, blocking and timers. Plain data (snapshot/hash friendly).
/// </summary>
public sealed class VcpuState : IStateHashable
{
    public const int NrVirqs = 24;

    public int Id;
    public readonly TrapInfo[] Traps = new TrapInfo[256];
    public Callback Event, Failsafe;
    /// <summary>CALLBACKTYPE_syscall32 / sysenter of a compat guest (4.19), each with CALLBACKF_mask_events.</summary>
    public Callback Syscall32, Sysenter;
    public bool Syscall32MasksEvents, SysenterMasksEvents;
    public uint NmiCallbackEip;
    /// <summary>CALLBACKF_mask_events on the failsafe callback (VGCF_failsafe_disables_events).</summary>
    public bool FailsafeMasksEvents;
    public ushort KernelSs;
    public uint KernelSp;
    public bool VirtualTs;
    /// <summary>Virtual IOPL set by PHYSDEVOP_set_iopl (real EFLAGS.IOPL stays 0).</summary>
    public int Iopl;
    public uint IoBitmap, IoBitmapPorts;
    public readonly uint[] DebugRegs = new uint[8];
    /// <summary>4.19: the guest's CR4.DE (ctrlreg[4]) and the DR7 enables of I/O breakpoints Xen emulates (dr7_emul).</summary>
    public bool GuestCr4De;
    public uint Dr7Emul;
    /// <summary>ctrlreg[2]: the CR2 of the last bounced #PF (or a guest mov to cr2).</summary>
    public uint Cr2;
    public bool NmiMasked, NmiPending;

    /// <summary>SCHEDOP_block/poll: not runnable until an event (or the poll timeout).</summary>
    public bool Blocked;
    public bool Polling;
    public readonly uint[] PollPorts = new uint[128];
    public int PollCount;
    public ulong PollTimeoutNs;
    /// <summary>
    /// 4.19: VCPUOP_initialise with VGCF_online cleared the down flag but nothing called vcpu_wake,
    /// so the scheduler never runs the vCPU until VCPUOP_down and up (docs/xen-model.md).
    /// </summary>
    public bool NotWoken;
    /// <summary>4.x poll_evtchn: the one port polled, -1 for several (or none), 0 when not polling.</summary>
    public int PollEvtchn;

    /// <summary>The one-shot timer deadline (set_timer_op / VCPUOP_set_singleshot_timer), 0 = none.</summary>
    public ulong SingleshotNs;
    /// <summary>Periodic VIRQ_TIMER period (0 = stopped), 100 Hz by default (§9).</summary>
    public ulong PeriodNs;
    public ulong PeriodicLastNs;
    public ulong PeriodicNextNs => PeriodNs == 0 ? 0 : PeriodicLastNs + PeriodNs;

    /// <summary>Port bound to each VIRQ on this vcpu (0 = none).</summary>
    public readonly uint[] VirqPort = new uint[NrVirqs];
    public bool Up = true;
    /// <summary>v->is_initialised: vCPU 0 by the domain builder, the others by VCPUOP_initialise.</summary>
    public bool Initialised = true;

    /// <summary>A deep copy (the arrays are copied, nothing is shared).</summary>
    public VcpuState Clone()
    {
        var c = new VcpuState();
        c.CopyFrom(this);
        return c;
    }

    /// <summary>Overwrites every field with <paramref name="s"/>'s (arrays copied element by element).</summary>
    public void CopyFrom(VcpuState s)
    {
        ArgumentNullException.ThrowIfNull(s);
        Id = s.Id;
        s.Traps.CopyTo(Traps, 0);
        Event = s.Event; Failsafe = s.Failsafe;
        Syscall32 = s.Syscall32; Sysenter = s.Sysenter;
        Syscall32MasksEvents = s.Syscall32MasksEvents; SysenterMasksEvents = s.SysenterMasksEvents;
        NmiCallbackEip = s.NmiCallbackEip;
        FailsafeMasksEvents = s.FailsafeMasksEvents;
        KernelSs = s.KernelSs; KernelSp = s.KernelSp;
        VirtualTs = s.VirtualTs;
        Iopl = s.Iopl;
        IoBitmap = s.IoBitmap; IoBitmapPorts = s.IoBitmapPorts;
        s.DebugRegs.CopyTo(DebugRegs, 0);
        GuestCr4De = s.GuestCr4De; Dr7Emul = s.Dr7Emul;
        Cr2 = s.Cr2;
        NmiMasked = s.NmiMasked; NmiPending = s.NmiPending;
        Blocked = s.Blocked; Polling = s.Polling;
        s.PollPorts.CopyTo(PollPorts, 0);
        PollCount = s.PollCount;
        PollTimeoutNs = s.PollTimeoutNs;
        PollEvtchn = s.PollEvtchn;
        NotWoken = s.NotWoken;
        SingleshotNs = s.SingleshotNs;
        PeriodNs = s.PeriodNs; PeriodicLastNs = s.PeriodicLastNs;
        s.VirqPort.CopyTo(VirqPort, 0);
        Up = s.Up;
        Initialised = s.Initialised;
    }

    /// <summary>Every field, in declaration order (the whole poll-port array: a stale entry is never read, but it is state).</summary>
    public void WriteState(CanonicalWriter w)
    {
        ArgumentNullException.ThrowIfNull(w);
        w.Tag("vcpu");
        w.I32(Id);
        foreach (var t in Traps) { w.U8(t.Flags); w.U16(t.Cs); w.U32(t.Address); }
        w.U16(Event.Cs); w.U32(Event.Eip);
        w.U16(Failsafe.Cs); w.U32(Failsafe.Eip);
        w.U32(NmiCallbackEip);
        w.Bool(FailsafeMasksEvents);
        w.U16(KernelSs); w.U32(KernelSp);
        w.Bool(VirtualTs);
        w.I32(Iopl);
        w.U32(IoBitmap); w.U32(IoBitmapPorts);
        foreach (uint d in DebugRegs) w.U32(d);
        w.U32(Cr2);
        w.Bool(NmiMasked); w.Bool(NmiPending);
        w.Bool(Blocked); w.Bool(Polling);
        foreach (uint p in PollPorts) w.U32(p);
        w.I32(PollCount);
        w.U64(PollTimeoutNs);
        w.U64(SingleshotNs);
        w.U64(PeriodNs); w.U64(PeriodicLastNs);
        foreach (uint p in VirqPort) w.U32(p);
        w.Bool(Up);
        // Fields added with the 4.19 profile, written only when set so 3.1 states keep their hashes.
        if (Syscall32.Cs != 0 || Syscall32.Eip != 0 || Sysenter.Cs != 0 || Sysenter.Eip != 0 || Syscall32MasksEvents || SysenterMasksEvents)
        {
            w.Tag("vcpu-syscall");
            w.U16(Syscall32.Cs); w.U32(Syscall32.Eip); w.Bool(Syscall32MasksEvents);
            w.U16(Sysenter.Cs); w.U32(Sysenter.Eip); w.Bool(SysenterMasksEvents);
        }
        // Written only for secondary vCPUs, so one-vCPU states keep their hashes.
        if (Id != 0 || !Initialised || NotWoken)
        {
            w.Tag("vcpu-smp");
            w.Bool(Initialised);
            w.Bool(NotWoken);
        }
        if (PollEvtchn != 0)
        {
            w.Tag("vcpu-poll");
            w.I32(PollEvtchn);
        }
        if (GuestCr4De || Dr7Emul != 0)
        {
            w.Tag("vcpu-debug");
            w.Bool(GuestCr4De); w.U32(Dr7Emul);
        }
    }
}
