using System.Buffers.Binary;
using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Cpu.Handlers;

namespace Replayvisor.Engine.Xen;

/// <summary>
/// The bodies of VCPUOP_initialise, up, down, yield and the per-vCPU runstate (xen/common/domain.c,
/// xen/arch/x86/domain.c arch_set_info_guest; the vcpu_guest_context layout is in docs/xen-abi.md §16).
/// </summary>
public sealed partial class Hypervisor
{
    /// <summary>sizeof(struct vcpu_guest_context) for x86_32 (and compat_vcpu_guest_context).</summary>
    public const int VcpuGuestContextSize = 2800;

    // Offsets in vcpu_guest_context (xen/include/public/arch-x86/xen.h, xen-x86_32.h).
    private const int CtxFpu = 0, CtxFlags = 512, CtxUserRegs = 516, CtxTraps = 584, CtxLdtBase = 2632, CtxLdtEnts = 2636,
        CtxGdtFrames = 2640, CtxGdtEnts = 2704, CtxKernelSs = 2708, CtxKernelSp = 2712, CtxCtrlReg = 2716,
        CtxDebugReg = 2748, CtxEventCs = 2780, CtxEventEip = 2784, CtxFailsafeCs = 2788, CtxFailsafeEip = 2792;
    private const uint VgcfI387Valid = 1u << 0, VgcfFailsafeDisablesEvents = 1u << 3, VgcfOnline = 1u << 5;

    /// <summary>
    /// VCPUOP_initialise: copy the context (-EFAULT), refuse an initialised vCPU (-EEXIST), then
    /// arch_set_info_guest (docs/xen-model.md "VCPUOP_initialise"): selectors of ring 0 become ring 1
    /// (fixup_guest_code/stack_selector), EFLAGS gets IF and bit 1 with IOPL made virtual, the LDT,
    /// GDT and base table are checked and referenced (-EINVAL); the FPU from the FXSAVE image when
    /// VGCF_i387_valid, else reset; CR0.TS and (4.19) CR4.DE from ctrlreg; the debug registers
    /// through set_debugreg's checks, a refused value staying at its reset value; the callbacks and
    /// VGCF_failsafe_disables_events. vm_assist is taken only for vCPU 0, which is never
    /// initialised here. The vCPU stays down until VCPUOP_up, except that on 4.19 VGCF_online
    /// clears its down flag without waking it (<see cref="VcpuState.NotWoken"/>).
    /// </summary>
    internal long InitialiseVcpu(VcpuState v, uint ptr)
    {
        var c = new byte[VcpuGuestContextSize];
        if (!Guest.TryRead(ptr, c)) return -Errno.EFAULT;
        if (v.Initialised) return -Errno.EEXIST;
        uint U32(int off) => BinaryPrimitives.ReadUInt32LittleEndian(c.AsSpan(off));
        ushort U16(int off) => BinaryPrimitives.ReadUInt16LittleEndian(c.AsSpan(off));

        Span<uint> gdt = stackalloc uint[16];
        for (int i = 0; i < 16; i++) gdt[i] = U32(CtxGdtFrames + i * 4);
        uint cr3 = U32(CtxCtrlReg + 3 * 4);
        long rc = Mm.PrepareContext((cr3 >> 12) | (cr3 << 20), gdt, U32(CtxGdtEnts), U32(CtxLdtBase), U32(CtxLdtEnts),
            FixupSelector(U16(CtxKernelSs)), U32(CtxKernelSp), out var mm);
        if (rc != 0) return rc;

        uint flags = U32(CtxFlags);
        for (int i = 0; i < 256; i++)
        {
            int o = CtxTraps + i * 8;
            v.Traps[i] = new TrapInfo { Flags = c[o + 1], Cs = FixupSelector(U16(o + 2)), Address = U32(o + 4) };
        }
        v.Event = new Callback { Cs = FixupSelector(U16(CtxEventCs)), Eip = U32(CtxEventEip) };
        v.Failsafe = new Callback { Cs = FixupSelector(U16(CtxFailsafeCs)), Eip = U32(CtxFailsafeEip) };
        v.FailsafeMasksEvents = (flags & VgcfFailsafeDisablesEvents) != 0;
        v.KernelSs = mm!.KernelSs;
        v.KernelSp = mm.KernelSp;
        v.VirtualTs = (U32(CtxCtrlReg) & Cr0Bits.TS) != 0;
        // pv_fixup_guest_cr4: of ctrlreg[4] the guest controls DE (TSD, FSGSBASE, OSXSAVE are not modelled).
        if (Xen4) v.GuestCr4De = (U32(CtxCtrlReg + 4 * 4) & Cr4Bits.DE) != 0;

        int r = CtxUserRegs;
        uint eflags = U32(r + 40);
        v.Iopl = (int)((eflags >> Fl.IoplShift) & 3); // "IOPL privileges are virtualised" (arch.iopl / arch.pv.iopl)
        eflags = (eflags & ~(Fl.IOPL | Fl.VM | Fl.RF)) | Fl.IF | Fl.Fixed1;
        ushort cs = FixupSelector(U16(r + 36));
        var segs = new SegmentCache[Seg.Count];
        segs[Seg.CS] = SegmentCache.Null(cs);
        segs[Seg.SS] = SegmentCache.Null(FixupSelector(U16(r + 48)));
        segs[Seg.ES] = SegmentCache.Null(U16(r + 52));
        segs[Seg.DS] = SegmentCache.Null(U16(r + 56));
        segs[Seg.FS] = SegmentCache.Null(U16(r + 60));
        segs[Seg.GS] = SegmentCache.Null(U16(r + 64));
        var dr = LoadContextDebugRegs(v, c.AsSpan(CtxDebugReg, 32));
        var here = Cpu.SaveContext();
        var cpu = here with
        {
            // Gpr in x86 encoding order: eax ecx edx ebx esp ebp esi edi.
            Gpr = [U32(r + 24), U32(r + 4), U32(r + 8), U32(r + 0), U32(r + 44), U32(r + 20), U32(r + 12), U32(r + 16)],
            Eip = U32(r + 32),
            Eflags = eflags,
            Segs = segs,
            Ldtr = SegmentCache.Null(0),
            Cr0 = v.VirtualTs ? here.Cr0 | Cr0Bits.TS : here.Cr0 & ~Cr0Bits.TS,
            Cr2 = 0,
            Cr3 = mm.BaseMfn << 12,
            Dr = dr,
            Cpl = cs & 3,
            Fpu = (flags & VgcfI387Valid) != 0 ? ContextFpu(c.AsSpan(CtxFpu, 512)) : new FpuState(),
        };
        _parked[v.Id] = new ParkedVcpu { Cpu = cpu, Mm = mm, FreshSelectors = true, BlockedNs = 0, RunstateEntryNs = NowNs, RunstateArea = 0 };
        v.Initialised = true;
        if (Xen4 && (flags & VgcfOnline) != 0)
        {
            v.Up = true;
            v.NotWoken = true;
        }
        return 0;
    }

    /// <summary>
    /// The debug registers of a context: reset (3.1: all 0; 4.19: DR6/DR7 at their defaults and
    /// dr7_emul clear), then set_debugreg for DR0-7 (3.1) or DR0-3, DR6, DR7 (4.19) with its checks,
    /// its error ignored ("(void)set_debugreg" / the unchecked calls of arch_set_info_guest).
    /// </summary>
    private uint[] LoadContextDebugRegs(VcpuState v, ReadOnlySpan<byte> values)
    {
        var dr = new uint[8];
        Array.Clear(v.DebugRegs);
        v.Dr7Emul = 0;
        if (Xen4)
        {
            v.DebugRegs[6] = dr[6] = Dr6Ones;
            v.DebugRegs[7] = dr[7] = Dr7Ones;
        }
        for (int i = 0; i < 8; i++)
        {
            if (Xen4 && i is 4 or 5) continue;
            SetDebugReg(v, i, BinaryPrimitives.ReadUInt32LittleEndian(values[(i * 4)..]), dr);
        }
        return dr;
    }

    /// <summary>
    /// vcpu_setup_fpu with the context's 512-byte FXSAVE image, as the first restore loads it. An
    /// image whose MXCSR sets a reserved bit makes that restore fault, and Xen's fixup differs: 3.1's
    /// FXRSTOR fixup zeroes the image and retries; 4.19's XRSTOR fixup (xstate.c, stage 1) resets
    /// the x87 and SSE state to their init values and keeps MXCSR ANDed with the mask.
    /// </summary>
    private FpuState ContextFpu(ReadOnlySpan<byte> image)
    {
        var f = new FpuState();
        uint mxcsr = BinaryPrimitives.ReadUInt32LittleEndian(image[24..]);
        if ((mxcsr & ~FpuControl.MxcsrMask) == 0) FpuControl.LoadFxImage(f, image, xmm: true);
        else if (Xen4) f.Mxcsr = mxcsr & FpuControl.MxcsrMask;
        else FpuControl.LoadFxImage(f, new byte[512], xmm: true);
        return f;
    }

    /// <summary>fixup_guest_code_selector / fixup_guest_stack_selector: a ring-0 selector becomes ring 1.</summary>
    private static ushort FixupSelector(ushort sel) => (sel & 3) == 0 && sel != 0 ? (ushort)(sel | 1) : sel;

    /// <summary>VCPUOP_up: -EINVAL before VCPUOP_initialise, else the vCPU becomes runnable (vcpu_wake).</summary>
    internal long BringUp(VcpuState v)
    {
        if (!v.Initialised) return -Errno.EINVAL;
        if (v.Up) return 0; // test_and_clear_bit(_VPF_down) found it clear: no vcpu_wake
        v.Up = true;
        v.NotWoken = false;
        return 0;
    }

    /// <summary>
    /// VCPUOP_down: the vCPU stops being scheduled (synchronous for the caller itself, which gives
    /// up the CPU). 4.x: taking down the last vCPU that is up powers the domain off; 3.1 lets it
    /// happen, and the machine then has nothing left to run.
    /// </summary>
    internal long BringDown(VcpuState v)
    {
        if (Xen4 && !Vcpus.Any(o => o != v && o.Up))
        {
            RequestShutdown(0);
            return 0;
        }
        v.Up = false;
        if (v == Vcpu) Cpu.RequestStop();
        return 0;
    }

    /// <summary>
    /// VCPUOP_register_vcpu_info (4.19; common_vcpu_op + map_guest_area): struct
    /// vcpu_register_vcpu_info { u64 mfn; u32 offset; u32 rsvd; }. -EFAULT unreadable; -EINVAL when
    /// mfn:offset is not one address in that frame; -EBUSY once moved; -ENXIO when the 64-byte
    /// area crosses a page or is not 4-byte aligned; -EINVAL / -EACCES for a frame that is not
    /// the domain's / cannot be writable. Then the old contents move there, every selector bit
    /// and upcall_pending are set ("the domain will get a spurious event, but it can cope") and
    /// the vCPU's time is written again.
    /// </summary>
    internal long RegisterVcpuInfo(VcpuState v, uint ptr)
    {
        Span<byte> b = stackalloc byte[16];
        if (!Guest.TryRead(ptr, b)) return -Errno.EFAULT;
        ulong mfn = BinaryPrimitives.ReadUInt64LittleEndian(b);
        uint offset = BinaryPrimitives.ReadUInt32LittleEndian(b[8..]);
        ulong gaddr = unchecked((mfn << 12) + offset);
        if (gaddr == ulong.MaxValue || gaddr >> 12 != mfn) return -Errno.EINVAL;
        if (SharedInfo.IsMoved(v.Id)) return -Errno.EBUSY;
        if (gaddr >> 12 != (gaddr + Boot.SharedInfo.VcpuInfoSize - 1) >> 12 || (gaddr & 3) != 0) return -Errno.ENXIO;
        long rc = Mm.TakeWritableRef(mfn);
        if (rc != 0) return rc;
        SharedInfo.MoveVcpuInfo(v.Id, gaddr);
        SharedInfo.SetPendingSel(v.Id, ~0u);
        Events.MarkEventsPending(v.Id);
        UpdateVcpuTime(v);
        return 0;
    }

    /// <summary>
    /// VCPUOP_send_nmi (4.19 common_vcpu_op): a non-null argument is -EINVAL; otherwise the vCPU's
    /// nmi_pending is set and, if it was clear, the vCPU is kicked (vcpu_kick: a blocked or polling
    /// vCPU becomes runnable). The NMI is taken on its next return to the guest (Hypervisor.Delivery.cs).
    /// </summary>
    internal long SendNmi(VcpuState v, uint arg)
    {
        if (arg != 0) return -Errno.EINVAL;
        if (v.NmiPending) return 0;
        v.NmiPending = true;
        Events.Unblock(v);
        return 0;
    }

    /// <summary>SCHEDOP_yield: with other vCPUs the running one's quantum ends here.</summary>
    internal long DoYield()
    {
        YieldSlice();
        return 0;
    }

    /// <summary>
    /// VCPUOP_get_runstate_info (vcpu_runstate_get): with several vCPUs, the vCPU's runstate with its
    /// current state's time counted up to now; with one, <see cref="RunstateInfo()"/>.
    /// </summary>
    internal byte[] RunstateInfo(VcpuState v)
    {
        if (!Smp) return RunstateInfo();
        SyncRunstates();
        return _runstates[v.Id].Encode(NowNs);
    }

    /// <summary>
    /// VCPUOP_register_runstate_memory_area for any vCPU (the running one gets it written at once).
    /// The model keeps the area with the vCPU's context, so a vCPU never initialised has none to
    /// hold it: -EINVAL (Xen would keep it; docs/xen-model.md).
    /// </summary>
    internal long SetRunstateArea(VcpuState v, uint area)
    {
        if (v == Vcpu)
        {
            RunstateArea = area;
            Guest.TryWrite(area, Smp ? _runstates[v.Id].Encode(null) : RunstateInfo());
            return 0;
        }
        if (_parked[v.Id] is not { } p) return -Errno.EINVAL;
        _parked[v.Id] = p with { RunstateArea = area };
        Guest.TryWrite(area, RunstateInfo(v)); // another vCPU's area gets vcpu_runstate_get's view at once
        return 0;
    }
}
