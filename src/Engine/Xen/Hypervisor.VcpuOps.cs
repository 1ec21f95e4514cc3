using System.Buffers.Binary;
using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Cpu;

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
    private const int CtxFlags = 512, CtxUserRegs = 516, CtxTraps = 584, CtxLdtBase = 2632, CtxLdtEnts = 2636,
        CtxGdtFrames = 2640, CtxGdtEnts = 2704, CtxKernelSs = 2708, CtxKernelSp = 2712, CtxCtrlReg = 2716,
        CtxDebugReg = 2748, CtxEventCs = 2780, CtxEventEip = 2784, CtxFailsafeCs = 2788, CtxFailsafeEip = 2792;
    private const uint VgcfFailsafeDisablesEvents = 1u << 3;

    /// <summary>
    /// VCPUOP_initialise: copy the context (-EFAULT), refuse an initialised vCPU (-EEXIST), then
    /// arch_set_info_guest: selectors of ring 0 become ring 1 (fixup_guest_code/stack_selector),
    /// EFLAGS gets IF and bit 1 with IOPL cleared, the LDT, GDT and base table are checked and
    /// referenced (-EINVAL). The vCPU stays down until VCPUOP_up.
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

        for (int i = 0; i < 256; i++)
        {
            int o = CtxTraps + i * 8;
            v.Traps[i] = new TrapInfo { Flags = c[o + 1], Cs = FixupSelector(U16(o + 2)), Address = U32(o + 4) };
        }
        v.Event = new Callback { Cs = FixupSelector(U16(CtxEventCs)), Eip = U32(CtxEventEip) };
        v.Failsafe = new Callback { Cs = FixupSelector(U16(CtxFailsafeCs)), Eip = U32(CtxFailsafeEip) };
        v.FailsafeMasksEvents = (U32(CtxFlags) & VgcfFailsafeDisablesEvents) != 0;
        v.KernelSs = mm!.KernelSs;
        v.KernelSp = mm.KernelSp;
        v.VirtualTs = (U32(CtxCtrlReg) & Cr0Bits.TS) != 0;
        for (int i = 0; i < 4; i++) v.DebugRegs[i] = U32(CtxDebugReg + i * 4);

        int r = CtxUserRegs;
        uint eflags = U32(r + 40);
        if (Xen4) v.Iopl = (int)((eflags >> Fl.IoplShift) & 3); // 4.x keeps the guest's IOPL virtual (arch.pv.iopl)
        eflags = (eflags & ~(Fl.IOPL | Fl.VM | Fl.RF)) | Fl.IF | Fl.Fixed1;
        ushort cs = FixupSelector(U16(r + 36));
        var segs = new SegmentCache[Seg.Count];
        segs[Seg.CS] = SegmentCache.Null(cs);
        segs[Seg.SS] = SegmentCache.Null(FixupSelector(U16(r + 48)));
        segs[Seg.ES] = SegmentCache.Null(U16(r + 52));
        segs[Seg.DS] = SegmentCache.Null(U16(r + 56));
        segs[Seg.FS] = SegmentCache.Null(U16(r + 60));
        segs[Seg.GS] = SegmentCache.Null(U16(r + 64));
        var dr = new uint[8];
        for (int i = 0; i < 4; i++) dr[i] = v.DebugRegs[i];
        dr[6] = v.DebugRegs[6];
        dr[7] = v.DebugRegs[7];
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
            Fpu = new FpuState(),
        };
        _parked[v.Id] = new ParkedVcpu { Cpu = cpu, Mm = mm, FreshSelectors = true, BlockedNs = 0, RunstateEntryNs = NowNs, RunstateArea = 0 };
        v.Initialised = true;
        return 0;
    }

    /// <summary>fixup_guest_code_selector / fixup_guest_stack_selector: a ring-0 selector becomes ring 1.</summary>
    private static ushort FixupSelector(ushort sel) => (sel & 3) == 0 && sel != 0 ? (ushort)(sel | 1) : sel;

    /// <summary>VCPUOP_up: -EINVAL before VCPUOP_initialise, else the vCPU becomes runnable (vcpu_wake).</summary>
    internal long BringUp(VcpuState v)
    {
        if (!v.Initialised) return -Errno.EINVAL;
        v.Up = true;
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

    /// <summary>SCHEDOP_yield: with other vCPUs the running one's quantum ends here.</summary>
    internal long DoYield()
    {
        YieldSlice();
        return 0;
    }

    /// <summary>vcpu_runstate_info (44 bytes) of any vCPU: the running one as <see cref="RunstateInfo()"/>; another is runnable (1), blocked (2) or offline (3) since its last switch.</summary>
    internal byte[] RunstateInfo(VcpuState v)
    {
        if (v == Vcpu) return RunstateInfo();
        var b = new byte[44];
        int state = !v.Up ? 3 : v.Blocked ? 2 : 1;
        var p = _parked[v.Id];
        BitConverter.TryWriteBytes(b.AsSpan(0), state);
        BitConverter.TryWriteBytes(b.AsSpan(4), p?.RunstateEntryNs ?? 0);
        BitConverter.TryWriteBytes(b.AsSpan(28), p?.BlockedNs ?? 0);
        return b;
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
            Guest.TryWrite(area, RunstateInfo());
            return 0;
        }
        if (_parked[v.Id] is not { } p) return -Errno.EINVAL;
        _parked[v.Id] = p with { RunstateArea = area };
        return 0;
    }
}
