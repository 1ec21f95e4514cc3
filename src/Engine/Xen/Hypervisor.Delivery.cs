using Replayvisor.Engine.Cpu;

namespace Replayvisor.Engine.Xen;

/// <summary>
/// Delivery into the guest (docs/xen-abi.md §8): routing of CPU events, bounce frames
/// (create_bounce_frame), the failsafe callback, HYPERVISOR_iret, and the return-to-guest path
/// (test_all_events, restore_all_guest). One place (docs/architecture.md, "Where each rule lives").
/// </summary>
public sealed partial class Hypervisor
{
    private const byte VectorHypercall = 0x82;
    private const uint TbfException = 1, TbfErrorCode = 2, TbfInterrupt = 8, TbfFailsafe = 0x10;
    /// <summary>TRAP_nmi: on 4.x the NMI handler is this trap table entry.</summary>
    internal const int NmiVector = 2;

    private GuestFrame _f;

    /// <summary>The context being returned to (valid during a delivery; tests and hypercalls read it).</summary>
    public ref GuestFrame Frame => ref _f;

    public void Deliver(X86Cpu cpu, in CpuEvent ev)
    {
        CpuEvent e = ev; // ev aliases the CPU's pending event, which a nested translation may overwrite
        if (IsStopped) { cpu.RequestStop(); return; }
        if (FaultStorm(cpu)) return;
        ulong deadline = NextDeadlineNs();
        Capture();
        switch (e.Kind)
        {
            case EventKind.SoftwareInterrupt: SoftwareInterrupt(e.Vector, e.InstructionEip); break;
            case EventKind.Sysenter: Sysenter(); break;
            case EventKind.Syscall: Syscall(e.InstructionEip); break;
            default: Exception(e); break;
        }
        // Xen runs pending softirqs (timers) on every exit, so a deadline already past fires on this return.
        if (!IsStopped && !Vcpu.Blocked) RunTimers();
        ReturnToGuest();
        // A timer armed (or brought forward) by this entry must fire at its deadline, not wherever the
        // current run happens to stop: hand control back so the machine re-arms its instruction limit.
        if (!IsStopped && NextDeadlineNs() < deadline) cpu.RequestStop();
    }

    /// <summary>Deliveries in a row with no instruction completing before the domain is crashed.</summary>
    public const int FaultStormLimit = 100_000;
    private ulong _stormIcount = ulong.MaxValue;
    private int _stormDeliveries;

    /// <summary>
    /// A guest whose handler faults on its first instruction (say a failsafe callback in a ring that
    /// cannot load its segments) takes fault after fault without completing an instruction. Time is
    /// the instruction count, so it would never reach a stop count and the run would never return;
    /// real Xen would livelock the vcpu. The model crashes the domain instead. Not hashed: it only
    /// differs between states at the same instruction count in the middle of such a storm.
    /// </summary>
    private bool FaultStorm(X86Cpu cpu)
    {
        if (cpu.Icount != _stormIcount) { _stormIcount = cpu.Icount; _stormDeliveries = 0; }
        if (++_stormDeliveries < FaultStormLimit) return false;
        CrashDomain($"fault storm: {FaultStormLimit} exceptions delivered without an instruction completing (EIP {cpu.Eip:x8})");
        cpu.RequestStop();
        return true;
    }

    /// <summary>Snapshot of the guest context from the CPU (Xen's SAVE_ALL).</summary>
    private void Capture()
    {
        var c = Cpu;
        _f.Eip = c.Eip;
        _f.Eflags = c.Eflags;
        _f.Esp = c.Esp;
        _f.Cs = c.Segs[Seg.CS].Selector;
        _f.Ss = c.Segs[Seg.SS].Selector;
        _f.Ds = c.Segs[Seg.DS].Selector;
        _f.Es = c.Segs[Seg.ES].Selector;
        _f.Fs = c.Segs[Seg.FS].Selector;
        _f.Gs = c.Segs[Seg.GS].Selector;
    }

    private int GuestCpl => _f.Vm86 ? 3 : _f.Rpl;

    /// <summary>int n (the CPU reports it as a software interrupt, EIP past the instruction).</summary>
    private void SoftwareInterrupt(byte n, uint insnEip)
    {
        if (n == VectorHypercall && !_f.Vm86 && _f.Rpl <= 1)
        {
            Hypercall();
            return;
        }
        // The statistics count the vector the guest is sent (int 0x80, int n, or the #GP of a gate it may not use),
        // as they count the CPU's exceptions in Exception (docs/json-output.md: the vectors that occurred).
        // Xen's own gates for #BP/#OF are DPL 3: int3/into always reach the guest handler (§8.3).
        if (n is Vectors.BP or Vectors.OF)
        {
            Stats.ExceptionsByVector[n]++;
            BounceTrap(n, false, 0);
            return;
        }
        ref TrapInfo ti = ref Vcpu.Traps[n];
        if (ti.Dpl >= GuestCpl)
        {
            Stats.ExceptionsByVector[n]++;
            // int 0x80 with TI bit 2 clear goes through Xen's direct trap gate: a plain hardware
            // frame (nothing in CS bits 16+, real IF = 1) and events stay unmasked (§8.3).
            if (n == 0x80 && !ti.MasksEvents && (ti.Cs & ~3) != 0) DirectTrap(ref ti);
            else BounceTrap(n, false, 0);
            return;
        }
        // do_general_protection with error code n*8+2: EIP back at the int instruction.
        _f.Eip = insnEip;
        Stats.ExceptionsByVector[Vectors.GP]++;
        BounceTrap(Vectors.GP, true, (uint)n * 8 + 2);
    }

    private void Exception(in CpuEvent e)
    {
        Stats.ExceptionsByVector[e.Vector]++;
        switch (e.Vector)
        {
            case Vectors.PF:
            {
                var outcome = Mm.HandlePageFault(e.Cr2, e.ErrorCode, GuestCpl);
                // Fixed by Xen (ptwr emulation may have advanced EIP, lazy LDT mapping restarts it): take the CPU's context again.
                if (outcome.Handled) { Capture(); return; }
                PropagatePageFault(outcome.Cr2, e.ErrorCode);
                return;
            }
            case Vectors.GP:
                GeneralProtection(e.ErrorCode);
                return;
            case Vectors.UD:
                if (TryForcedEmulation()) return;
                BounceTrap(Vectors.UD, false, 0);
                return;
            case Vectors.NM:
                // math_state_restore: Xen restores the FPU itself; the guest sees #NM only with its virtual TS set.
                if (Vcpu.VirtualTs)
                {
                    Vcpu.VirtualTs = false;
                    SyncVirtualTs();
                    BounceTrap(Vectors.NM, false, 0);
                }
                else SyncVirtualTs();
                return;
            case Vectors.DB:
                Vcpu.DebugRegs[6] = Cpu.Dr[6];
                BounceTrap(Vectors.DB, false, 0);
                return;
            default:
                BounceTrap(e.Vector, Vectors.PushesErrorCode(e.Vector) && e.HasErrorCode, e.ErrorCode);
                return;
        }
    }

    /// <summary>do_general_protection (§8.3).</summary>
    private void GeneralProtection(uint err)
    {
        if ((err & 3) == 2)
        {
            // A CPU that applies the IDT DPL itself reports int n as #GP(n*8+2), EIP at the int.
            byte n = (byte)(err >> 3);
            ref TrapInfo ti = ref Vcpu.Traps[n];
            if (ti.Dpl >= GuestCpl)
            {
                _f.Eip += 2;
                BounceTrap(n, false, 0);
                return;
            }
        }
        _emulationUd = false;
        if (err == 0 && EmulatePrivilegedOp()) return;
        if (_emulationUd) { _emulationUd = false; BounceTrap(Vectors.UD, false, 0); return; }
        BounceTrap(Vectors.GP, true, err);
    }

    /// <summary>propagate_page_fault: CR2 into ctrlreg[2] and vcpu_info.arch.cr2, U bit by ring (§8.3).</summary>
    internal void PropagatePageFault(uint cr2, uint err)
    {
        Vcpu.Cr2 = cr2;
        SharedInfo.SetCr2(Vcpu.Id, cr2);
        err &= ~PfErr.U;
        if (GuestCpl != 1) err |= PfErr.U;
        BounceTrap(Vectors.PF, true, err, cr2);
    }

    /// <summary>do_guest_trap: bounce through the guest trap table.</summary>
    internal void BounceTrap(byte vector, bool hasError, uint err, uint cr2 = 0)
    {
        ref TrapInfo ti = ref Vcpu.Traps[vector];
        uint flags = TbfException | (hasError ? TbfErrorCode : 0) | (ti.MasksEvents ? TbfInterrupt : 0);
        uint eipBefore = _f.Eip;
        if (!CreateBounceFrame(ti.Cs, ti.Address, flags, err)) return;
        Observer?.OnExceptionAt(Cpu.Icount, vector, err, cr2, eipBefore, ti.Address);
    }

    /// <summary>The hardware path of Xen's int 0x80 trap gate: ring change via TSS ss1:esp1, no mask byte.</summary>
    private void DirectTrap(ref TrapInfo ti)
    {
        bool outer = _f.OuterRing;
        ushort ss = outer ? Vcpu.KernelSs : _f.Ss;
        uint esp = outer ? Vcpu.KernelSp : _f.Esp;
        if (!LoadForStackWrite(ss, out SegmentCache ssc)) return;
        if (outer)
        {
            if (!PushGuest(ref ssc, ref esp, _f.Ss) || !PushGuest(ref ssc, ref esp, _f.Esp)) return;
        }
        if (!PushGuest(ref ssc, ref esp, _f.Eflags) || !PushGuest(ref ssc, ref esp, _f.Cs) || !PushGuest(ref ssc, ref esp, _f.Eip)) return;
        Observer?.OnExceptionAt(Cpu.Icount, 0x80, 0, 0, _f.Eip, ti.Address);
        _f.Eflags &= ~(Fl.VM | Fl.RF | Fl.NT | Fl.TF);
        _f.Ss = ss;
        _f.Esp = esp;
        _f.Cs = (ushort)(ti.Cs | 1);
        _f.Eip = ti.Address;
    }

    /// <summary>
    /// create_bounce_frame (xen/arch/x86/x86_32/entry.S, §8.2). Returns false if the domain was
    /// crashed (null handler CS, or a fault writing the guest stack).
    /// </summary>
    private bool CreateBounceFrame(ushort cs, uint eip, uint flags, uint err)
    {
        bool outer = _f.OuterRing;
        if (_f.Vm86) { CrashDomain("bounce from VM86 mode: VM86 is not supported by this model"); return false; }
        ushort ss = outer ? Vcpu.KernelSs : _f.Ss;
        uint esp = outer ? Vcpu.KernelSp : _f.Esp;
        if (!LoadForStackWrite(ss, out SegmentCache ssc)) return false;
        if (outer && (!PushGuest(ref ssc, ref esp, _f.Ss) || !PushGuest(ref ssc, ref esp, _f.Esp))) return false;
        int v = Vcpu.Id;
        byte saved = SharedInfo.UpcallMask(v);
        if ((flags & TbfInterrupt) != 0 && saved == 0) SharedInfo.SetUpcallMask(v, 1);
        uint eflags = (_f.Eflags & ~(Fl.IF | Fl.IOPL)) | (saved == 0 ? Fl.IF : 0);
        // compat_create_bounce_frame folds the virtual IOPL into the frame under VMASST architectural_iopl.
        if (Mm.ArchitecturalIopl) eflags |= (uint)Vcpu.Iopl << 12;
        uint csSlot = _f.Cs | ((uint)saved << 16);
        if (!PushGuest(ref ssc, ref esp, eflags) || !PushGuest(ref ssc, ref esp, csSlot) || !PushGuest(ref ssc, ref esp, _f.Eip)) return false;
        if ((flags & TbfErrorCode) != 0 && !PushGuest(ref ssc, ref esp, err)) return false;
        if ((flags & TbfFailsafe) != 0
            && (!PushGuest(ref ssc, ref esp, _f.Gs) || !PushGuest(ref ssc, ref esp, _f.Fs)
                || !PushGuest(ref ssc, ref esp, _f.Es) || !PushGuest(ref ssc, ref esp, _f.Ds))) return false;
        _f.Eflags &= ~(Fl.VM | Fl.RF | Fl.NT | Fl.TF);
        _f.Ss = ss;
        _f.Esp = esp;
        if ((cs & ~3) == 0)
        {
            CrashDomain($"no handler: delivery to a null code selector (CS {cs:x4}, EIP {eip:x8})");
            return false;
        }
        _f.Cs = cs;
        _f.Eip = eip;
        return true;
    }

    /// <summary>Xen loads the stack selector into %gs at ring 0 before writing the frame; a failure crashes the domain.</summary>
    private bool LoadForStackWrite(ushort ss, out SegmentCache ssc)
    {
        if (SegmentLoader.TryLoad(Seg.GS, ss, 0, out ssc, out var fault) && ssc.Usable) return true;
        CrashDomain($"bounce frame: guest stack selector {ss:x4} does not load ({fault.Vector}, error {fault.ErrorCode:x})");
        return false;
    }

    /// <summary>One dword onto the guest stack through its segment, as ring 0 with CR0.WP (a fault crashes the domain).</summary>
    private bool PushGuest(ref SegmentCache ss, ref uint esp, uint value)
    {
        esp -= 4;
        if (!ss.Writable || !ss.InLimits(esp, 4))
        {
            CrashDomain($"bounce frame: guest stack {ss.Selector:x4}:{esp:x8} is outside its segment");
            return false;
        }
        uint lin = ss.Base + esp;
        if (lin >= Layout.HypervisorVirtStart || !WriteLinear32(lin, value))
        {
            CrashDomain($"bounce frame: writing the guest stack at {lin:x8} faulted");
            return false;
        }
        return true;
    }

    private bool WriteLinear32(uint lin, uint value)
    {
        // Within one page of RAM (nearly always): one translation and one write, as the loop below would do them.
        if ((lin & 0xFFF) <= 0xFFC)
        {
            if (!Cpu.Translate(lin, Access.Write, false, out ulong at)) { Cpu.ClearFault(); return false; }
            if (Cpu.Memory.Contains(at, 4)) { Cpu.Memory.Write32(at, value); return true; }
        }
        Span<byte> b = stackalloc byte[4];
        BitConverter.TryWriteBytes(b, value);
        for (int i = 0; i < 4;)
        {
            uint a = lin + (uint)i;
            if (!Cpu.Translate(a, Access.Write, false, out ulong pa)) { Cpu.ClearFault(); return false; }
            int n = Math.Min(4 - i, 0x1000 - (int)(a & 0xFFF));
            Cpu.Memory.WriteBytes(pa, b.Slice(i, n));
            i += n;
        }
        return true;
    }

    /// <summary>
    /// The exit path every entry into Xen ends with: test_all_events (deliver a pending unmasked
    /// event upcall), then restore_all_guest (reload DS/ES/FS/GS, the final iret), bouncing to the
    /// failsafe callback when a reload or the iret faults, and finally committing the context to the CPU.
    /// </summary>
    public void ReturnToGuest()
    {
        int failsafes = 0;
        while (true)
        {
            if (IsStopped) { Cpu.RequestStop(); return; }
            if (!Vcpu.Blocked) TestAllEvents();
            if (IsStopped) continue;
            if (TryRestore(out string cause)) return;
            if (IsStopped) continue;
            // Xen would keep stacking failsafe frames until a stack write faults; end it at once.
            if (++failsafes > 1) { CrashDomain($"the failsafe callback cannot be entered: {cause}"); continue; }
            Failsafe(cause);
        }
    }

    /// <summary>Delivers events at an instruction boundary (after a timer or an external event), as Xen's interrupt exit does.</summary>
    public void DeliverPendingEvents()
    {
        if (IsStopped || Vcpu.Blocked) return;
        int v = Vcpu.Id;
        bool nmi = Xen4 && Vcpu.NmiPending && !Vcpu.NmiMasked;
        if (!nmi && (SharedInfo.UpcallMask(v) != 0 || SharedInfo.UpcallPending(v) == 0)) return;
        Capture();
        ReturnToGuest();
    }

    /// <summary>The ports of the upcall being injected, for the observer (reused: it copies what it keeps).</summary>
    private readonly uint[] _upcallPorts = new uint[EventChannels.NrPorts];

    /// <summary>test_all_events: an upcall if evtchn_upcall_mask == 0 and evtchn_upcall_pending != 0 (§9).</summary>
    private void TestAllEvents()
    {
        int v = Vcpu.Id;
        if (Xen4)
        {
            // compat_process_nmi (x86_64/compat/entry.S): pending and not masked → cleared; through
            // trap_ctxt[2] (set_guest_nmi_trapbounce), lost when that has no code selector; the
            // NMI stays masked until HYPERVISOR_iret (async_exception_cleanup).
            if (Vcpu.NmiPending && !Vcpu.NmiMasked)
            {
                Vcpu.NmiPending = false;
                var t = Vcpu.Traps[NmiVector];
                if (t.Cs != 0)
                {
                    Vcpu.NmiMasked = true;
                    if (!CreateBounceFrame(t.Cs, t.Address, t.MasksEvents ? TbfInterrupt : 0, 0)) return;
                }
            }
        }
        else if (Vcpu.NmiPending && !Vcpu.NmiMasked && Vcpu.NmiCallbackEip != 0)
        {
            Vcpu.NmiPending = false;
            Vcpu.NmiMasked = true;
            if (!CreateBounceFrame(Boot.XenLayout.FlatKernelCs, Vcpu.NmiCallbackEip, 0, 0)) return;
        }
        if (SharedInfo.UpcallMask(v) != 0 || SharedInfo.UpcallPending(v) == 0) return;
        int ports = Observer != null ? Events.PendingUnmaskedPorts(_upcallPorts) : 0;
        uint interrupted = Observer != null ? InterruptedSite() : 0;
        if (!CreateBounceFrame(Vcpu.Event.Cs, Vcpu.Event.Eip, TbfInterrupt, 0)) return;
        Stats.Upcalls++;
        var observed = new ReadOnlySpan<uint>(_upcallPorts, 0, ports);
        if (_trace != null) _trace.OnUpcallAt(Cpu.Icount, v, observed, interrupted, Vcpu.Event.Eip);
        else Observer?.OnUpcallAt(Cpu.Icount, v, observed, interrupted, Vcpu.Event.Eip);
    }

    /// <summary>
    /// The guest code an upcall interrupts: the frame's EIP, or, when the vCPU is returning from a
    /// hypercall-page stub at ring 1 (docs/xen-abi.md §1), the stub's caller, as the return address on
    /// the kernel stack read without side effects (like a hypercall's call site).
    /// </summary>
    private uint InterruptedSite()
    {
        uint eip = _f.Eip;
        if (!_f.OuterRing && _hypercallPage is uint page && eip - page < 4096
            && Mm.PeekGuest32(Cpu.Segs[Seg.SS].Base + _f.Esp) is uint ret)
            return ret;
        return eip;
    }

    private void Failsafe(string cause)
    {
        Stats.Failsafes++;
        uint flags = TbfFailsafe | (Vcpu.FailsafeMasksEvents ? TbfInterrupt : 0);
        uint eip = _f.Eip;
        if (!CreateBounceFrame(Vcpu.Failsafe.Cs, Vcpu.Failsafe.Eip, flags, 0)) return;
        Observer?.OnFailsafe(Cpu.Icount, eip, cause);
        _f.Ds = _f.Es = _f.Fs = _f.Gs = 0;
    }

    /// <summary>The six loads of the return in progress (scratch; no state).</summary>
    private readonly SegmentCache[] _returnLoads = new SegmentCache[ISegmentLoader.ReturnSegments.Length];

    /// <summary>restore_all_guest: DS/ES/FS/GS loads at ring 0, then the iret to the frame's ring; commit on success.</summary>
    private bool TryRestore(out string cause)
    {
        cause = "";
        if (_f.Vm86) { CrashDomain("return to VM86 mode: VM86 is not supported by this model"); return false; }
        int rpl = _f.Rpl;
        if (rpl == 0) { CrashDomain($"return to a ring-0 code selector {_f.Cs:x4}"); return false; }
        // ISegmentLoader.ReturnSegments order: DS, ES, FS, GS, CS, SS.
        ReadOnlySpan<ushort> sels = [_f.Ds, _f.Es, _f.Fs, _f.Gs, _f.Cs, _f.Ss];
        int failed = SegmentLoader.TryLoadReturn(sels, _returnLoads, out ReadOnlySpan<SegmentCache> loaded, out var f);
        if (failed >= 0)
        {
            cause = failed switch
            {
                < 4 => $"loading {Seg.Names[ISegmentLoader.ReturnSegments[failed]]} = {sels[failed]:x4} faulted (vector {f.Vector}, error {f.ErrorCode:x})",
                4 => $"iret to cs {_f.Cs:x4} faulted (vector {f.Vector}, error {f.ErrorCode:x})",
                _ => $"iret to ss {_f.Ss:x4} faulted (vector {f.Vector}, error {f.ErrorCode:x})",
            };
            return false;
        }
        ref readonly SegmentCache cs = ref loaded[4];
        if (_f.Eip > cs.Limit)
        {
            cause = $"iret to eip {_f.Eip:x8} beyond the cs limit {cs.Limit:x8}";
            return false;
        }
        // Commit (the iret itself). Xen keeps the guest's real IF = 1 and IOPL = 0.
        var c = Cpu;
        c.ClearFault();
        var segs = c.Segs;
        segs[Seg.CS] = cs;
        segs[Seg.SS] = loaded[5];
        for (int i = 0; i < 4; i++)
        {
            // Read in place and copied once (a copy through the stack costs a store-forwarding stall per segment).
            ref readonly SegmentCache s = ref loaded[i];
            ref SegmentCache into = ref segs[ISegmentLoader.ReturnSegments[i]];
            // iret to an outer ring nulls data segments the new CPL may not use (SDM vol. 2 IRET).
            if (s.Usable && (!s.IsCode || !s.Conforming) && s.Dpl < rpl) into = SegmentCache.Null(0);
            else into = s;
        }
        c.Eip = _f.Eip;
        c.Esp = _f.Esp;
        c.Eflags = (_f.Eflags & ~Fl.IOPL) | Fl.IF;
        if (c.Cpl != rpl) c.Cpl = rpl;
        return true;
    }

    /// <summary>HYPERVISOR_iret (do_iret, xen/arch/x86/x86_32/traps.c; §8.5). Returns the popped EAX.</summary>
    internal long DoIret()
    {
        uint esp = _f.Esp;
        if ((ulong)esp + 40 > Layout.HypervisorVirtStart) { CrashDomain($"iret: frame at {esp:x8} overlaps Xen"); return 0; }
        if (!Guest.TryRead32(esp, out uint eax) || !Guest.TryRead32(esp + 4, out uint eip) || !Guest.TryRead32(esp + 8, out uint cs)
            || !Guest.TryRead32(esp + 12, out uint eflags))
        {
            CrashDomain($"iret: frame at {esp:x8} is not readable");
            return 0;
        }
        esp += 16;
        // compat_iret (pv/iret.c): under VMASST architectural_iopl the frame's IOPL becomes the virtual IOPL.
        if (Mm.ArchitecturalIopl) Vcpu.Iopl = (int)((eflags & Fl.IOPL) >> 12);
        _f.Eflags = (eflags & ~Fl.IOPL) | Fl.IF;
        if ((eflags & Fl.VM) != 0)
        {
            CrashDomain("iret: return to VM86 mode is not supported by this model");
            return 0;
        }
        if ((cs & 3) == 0) { CrashDomain($"iret: return to ring 0 (cs {cs & 0xFFFF:x4})"); return 0; }
        if ((cs & 3) != 1)
        {
            if (!Guest.TryRead32(esp, out uint newEsp) || !Guest.TryRead32(esp + 4, out uint newSs))
            {
                CrashDomain($"iret: outer-ring frame at {esp:x8} is not readable");
                return 0;
            }
            _f.Esp = newEsp;
            _f.Ss = (ushort)newSs;
        }
        else _f.Esp = esp;
        _f.Eip = eip;
        _f.Cs = (ushort)cs;
        Vcpu.NmiMasked = false;
        SharedInfo.SetUpcallMask(Vcpu.Id, (byte)((eflags & Fl.IF) == 0 ? 1 : 0));
        return eax;
    }

    /// <summary>Keeps the CPU's CR0.TS equal to the virtual TS, so FPU use raises #NM exactly when the guest asked for it.</summary>
    internal void SyncVirtualTs()
    {
        if (Vcpu.VirtualTs) Cpu.Cr0 |= Cr0Bits.TS; else Cpu.Cr0 &= ~Cr0Bits.TS;
    }
}
