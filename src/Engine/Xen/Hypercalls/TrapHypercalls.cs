namespace Replayvisor.Engine.Xen.Hypercalls;

/// <summary>
/// Traps, callbacks, kernel stack, FPU and debug registers (xen/arch/x86/traps.c,
/// x86_32/traps.c; docs/xen-abi.md §8.1, §8.4, §8.5, §12).
/// </summary>
internal static class TrapHypercalls
{
    /// <summary>fixup_guest_code_selector / fixup_guest_stack_selector: RPL 0 becomes 1.</summary>
    internal static ushort FixupSelector(uint sel) => (ushort)((sel & 3) == 0 ? (sel | 1) & 0xFFFF : sel & 0xFFFF);

    public static long SetTrapTable(Hypervisor hv, in HypercallArgs a)
    {
        var traps = hv.Vcpu.Traps;
        if (a.A1 == 0)
        {
            Array.Clear(traps);
            return 0;
        }
        Span<byte> e = stackalloc byte[8];
        for (uint p = a.A1; ; p += 8)
        {
            if (!hv.Guest.TryRead(p, e)) return -Errno.EFAULT;
            uint address = BitConverter.ToUInt32(e[4..]);
            if (address == 0) return 0;
            byte vector = e[0];
            traps[vector] = new TrapInfo { Flags = e[1], Cs = FixupSelector(BitConverter.ToUInt16(e[2..])), Address = address };
        }
    }

    public static long StackSwitch(Hypervisor hv, in HypercallArgs a)
    {
        ushort ss = FixupSelector(a.A1);
        hv.Vcpu.KernelSs = ss;
        hv.Vcpu.KernelSp = a.A2;
        hv.Mm.SetKernelStack(ss, a.A2);
        return 0;
    }

    public static long SetCallbacks(Hypervisor hv, in HypercallArgs a)
    {
        var v = hv.Vcpu;
        v.Event = new Callback { Cs = FixupSelector(a.A1), Eip = a.A2 };
        v.Failsafe = new Callback { Cs = FixupSelector(a.A3), Eip = a.A4 };
        v.FailsafeMasksEvents = false;
        return 0;
    }

    public static long FpuTaskswitch(Hypervisor hv, in HypercallArgs a)
    {
        hv.Vcpu.VirtualTs = a.A1 != 0;
        hv.SyncVirtualTs();
        return 0;
    }

    public static long SetDebugreg(Hypervisor hv, in HypercallArgs a) => hv.SetDebugReg((int)a.A1, a.A2);

    public static long GetDebugreg(Hypervisor hv, in HypercallArgs a) => hv.GetDebugReg((int)a.A1);

    public static long Iret(Hypervisor hv, in HypercallArgs a) => hv.DoIret();

    /// <summary>
    /// XENNMI_register_callback (0) / unregister (1). 3.1 keeps a handler address (no NMI source exists
    /// for a domU there). 4.19 (pv/callback.c compat_nmi_op): register_guest_nmi_callback /
    /// unregister_guest_nmi_callback on trap_ctxt[2], where VCPUOP_send_nmi's NMIs are delivered.
    /// </summary>
    public static long NmiOp(Hypervisor hv, in HypercallArgs a)
    {
        switch (a.A1)
        {
            case 0:
                if (!hv.Guest.TryRead32(a.A2, out uint handler)) return -Errno.EFAULT;
                if (hv.Xen4) RegisterNmiCallback(hv.Vcpu, handler);
                else hv.Vcpu.NmiCallbackEip = handler;
                return 0;
            case 1:
                if (hv.Xen4) hv.Vcpu.Traps[Hypervisor.NmiVector] = default;
                else hv.Vcpu.NmiCallbackEip = 0;
                return 0;
            default:
                return -Errno.ENOSYS;
        }
    }

    /// <summary>
    /// register_guest_nmi_callback (pv/callback.c): trap_ctxt[2] = { FLAT_COMPAT_KERNEL_CS, address,
    /// flags 0 with TI_SET_IF }, so the NMI frame masks events.
    /// </summary>
    private static void RegisterNmiCallback(VcpuState v, uint address) =>
        v.Traps[Hypervisor.NmiVector] = new TrapInfo { Flags = 4, Cs = Boot.XenLayout.FlatKernelCs, Address = address };

    /// <summary>
    /// callback_op (3.1: x86_32/traps.c; 4.19: pv/callback.c compat_callback_op). 4.19 adds the compat
    /// guest's sysenter (5) and syscall32 (7) callbacks and answers an unknown command with -EINVAL.
    /// </summary>
    public static long CallbackOp(Hypervisor hv, in HypercallArgs a)
    {
        var v = hv.Vcpu;
        switch (a.A1)
        {
            case 0: // CALLBACKOP_register
            {
                Span<byte> r = stackalloc byte[12];
                if (!hv.Guest.TryRead(a.A2, r)) return -Errno.EFAULT;
                ushort type = BitConverter.ToUInt16(r), flags = BitConverter.ToUInt16(r[2..]);
                bool mask = (flags & 1) != 0; // CALLBACKF_mask_events
                var cb = new Callback { Cs = FixupSelector(BitConverter.ToUInt32(r[4..])), Eip = BitConverter.ToUInt32(r[8..]) };
                switch (type)
                {
                    case CallbackEvent: v.Event = cb; return 0;
                    case CallbackFailsafe: v.Failsafe = cb; v.FailsafeMasksEvents = mask; return 0;
                    case CallbackNmi when hv.Xen4: RegisterNmiCallback(v, cb.Eip); return 0;
                    case CallbackNmi: v.NmiCallbackEip = cb.Eip; return 0;
                    case CallbackSysenter when hv.Xen4: v.Sysenter = cb; v.SysenterMasksEvents = mask; return 0;
                    case CallbackSyscall32 when hv.Xen4: v.Syscall32 = cb; v.Syscall32MasksEvents = mask; return 0;
                    // syscall (2) is x86_64-only; 3.1's sysenter needs a supervisor-mode kernel build.
                    default: return -Errno.ENOSYS;
                }
            }
            case 1: // CALLBACKOP_unregister
            {
                Span<byte> r = stackalloc byte[4];
                if (!hv.Guest.TryRead(a.A2, r)) return -Errno.EFAULT;
                switch (BitConverter.ToUInt16(r))
                {
                    case CallbackEvent: case CallbackFailsafe: return -Errno.EINVAL;
                    case CallbackSysenter or CallbackSyscall32 when hv.Xen4: return -Errno.EINVAL;
                    case CallbackNmi when hv.Xen4: v.Traps[Hypervisor.NmiVector] = default; return 0;
                    case CallbackNmi: v.NmiCallbackEip = 0; return 0;
                    default: return -Errno.ENOSYS;
                }
            }
            default:
                return hv.Xen4 ? -Errno.EINVAL : -Errno.ENOSYS;
        }
    }

    /// <summary>CALLBACKTYPE_* (public/callback.h).</summary>
    public const ushort CallbackEvent = 0, CallbackFailsafe = 1, CallbackNmi = 4, CallbackSysenter = 5, CallbackSyscall32 = 7;
}
