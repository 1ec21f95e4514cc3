using Replayvisor.Engine.Cpu;

namespace Replayvisor.Engine.Tests.Cpu;

/// <summary>
/// A host that delivers exceptions and interrupts as protected-mode hardware does, through the IDT
/// (SDM vol. 3 §6.10-6.13; vol. 2 INT n "PROTECTED-MODE" pseudocode). Used by tests and by anything running
/// a bare-metal ring-0 kernel in the tests; Xen guests use the Xen model's delivery instead.
/// <list type="bullet">
/// <item>Interrupt gates (clear IF) and trap gates, 16- and 32-bit. Task gates are not supported: delivery
/// through one raises #GP(vector*8+2+EXT).</item>
/// <item>Software interrupts (int n, int3, into) check gate DPL ≥ CPL, else #GP(vector*8+2).</item>
/// <item>A non-conforming handler with DPL &lt; CPL switches to the TSS stack for that DPL and pushes SS:ESP.</item>
/// <item>Pushed EFLAGS has RF set for faults other than #DB (SDM vol. 3 §17.3.1.1); TF, NT, RF, VM are then cleared.</item>
/// <item>A fault while delivering is combined per SDM vol. 3 table 6-5: contributory after contributory, or
/// contributory/#PF after #PF, becomes #DF(0); otherwise the second event is delivered instead. A fault while
/// delivering #DF is a triple fault: <see cref="TripleFault"/> is set and the CPU stops (shutdown).</item>
/// </list>
/// Delivery validates the gate, the target and the stack first, writes the frame, then commits registers.
/// </summary>
public class NativeIdtHost : ICpuHost
{
    /// <summary>True once a fault occurred while delivering #DF; the CPU was stopped.</summary>
    public bool TripleFault { get; private set; }
    public int Halts { get; private set; }
    /// <summary>Number of events delivered successfully (including a #DF that replaced another).</summary>
    public long Delivered { get; private set; }
    /// <summary>The last event delivered successfully.</summary>
    public CpuEvent LastDelivered { get; private set; }
    /// <summary>Stop the CPU at hlt (true) or just continue (false: hlt with nothing to wait for).</summary>
    public bool StopOnHalt { get; set; } = true;

    public void Deliver(X86Cpu cpu, in CpuEvent e)
    {
        CpuEvent cur = e;
        // Faults return to the faulting instruction; traps and software interrupts to the next one.
        uint retEip = e.Kind == EventKind.Fault ? e.InstructionEip : cpu.Eip;
        for (int attempt = 0; ; attempt++)
        {
            cpu.ClearFault();
            if (TryDeliver(cpu, cur, retEip))
            {
                Delivered++;
                LastDelivered = cur;
                return;
            }
            CpuEvent f = cpu.PendingEvent;
            cpu.ClearFault();
            if ((cur.Vector == Vectors.DF && cur.Kind == EventKind.Fault) || attempt >= 8)
            {
                TripleFault = true;
                cpu.RequestStop();
                return;
            }
            retEip = f.InstructionEip;
            cpu.Eip = retEip;
            cur = IsDoubleFault(cur, f) ? new CpuEvent(Vectors.DF, EventKind.Fault, true, 0, f.InstructionEip, 0) : f;
        }
    }

    private static bool Contributory(byte v) => v is Vectors.DE or Vectors.TS or Vectors.NP or Vectors.SS or Vectors.GP;

    /// <summary>SDM vol. 3 table 6-5: which pairs of exceptions make a double fault.</summary>
    private static bool IsDoubleFault(in CpuEvent first, in CpuEvent second)
    {
        if (first.Kind != EventKind.Fault) return false; // software interrupts and traps are benign
        bool secondBad = Contributory(second.Vector) || second.Vector == Vectors.PF;
        if (first.Vector == Vectors.PF) return secondBad;
        return Contributory(first.Vector) && Contributory(second.Vector);
    }

    /// <summary>One delivery attempt; false with the CPU's pending fault set when it fails.</summary>
    private static bool TryDeliver(X86Cpu cpu, in CpuEvent e, uint retEip)
    {
        byte vector = e.Vector;
        bool soft = e.Kind == EventKind.SoftwareInterrupt
                    || (e.Kind == EventKind.Trap && vector is Vectors.BP or Vectors.OF);
        // EXT: the fault arose while delivering an event external to the program (SDM vol. 3 §6.13).
        uint ext = soft ? 0u : 1u;
        uint idtErr = (uint)vector * 8 + 2 + ext;
        int cpl = cpu.Cpl;

        if ((uint)vector * 8 + 7 > cpu.IdtrLimit) { cpu.RaiseGp(idtErr); return false; }
        ulong gate = cpu.ReadSystem(cpu.IdtrBase + (uint)vector * 8, 8);
        if (cpu.Faulted) return false;
        int type = Desc.TypeS(gate);
        if (type is not (SysType.IntGate16 or SysType.TrapGate16 or SysType.IntGate32 or SysType.TrapGate32 or SysType.TaskGate))
        {
            cpu.RaiseGp(idtErr);
            return false;
        }
        if (soft && Desc.Dpl(gate) < cpl) { cpu.RaiseGp((uint)vector * 8 + 2); return false; }
        if (!Desc.Present(gate)) { cpu.RaiseFault(Vectors.NP, idtErr); return false; }
        if (type == SysType.TaskGate) { cpu.RaiseGp(idtErr); return false; } // task switches are not supported

        ushort csSel = Desc.GateSelector(gate);
        uint target = Desc.GateOffset(gate);
        int gsize = Desc.GateSize(gate);
        if ((csSel & 0xFFFC) == 0) { cpu.RaiseGp(ext); return false; }
        if (!cpu.FetchDescriptor(csSel, Vectors.GP, ext, out ulong cdesc, out uint caddr)) return false;
        uint cerr = (csSel & 0xFFFCu) | ext;
        int dpl = Desc.Dpl(cdesc);
        if (!Desc.IsCode(cdesc) || dpl > cpl) { cpu.RaiseGp(cerr); return false; }
        if (!Desc.Present(cdesc)) { cpu.RaiseFault(Vectors.NP, cerr); return false; }
        bool conforming = Desc.Conforming(cdesc);
        int newCpl = !conforming && dpl < cpl ? dpl : cpl;

        uint flags = cpu.Eflags;
        uint pushedFlags = flags;
        if (e.Kind == EventKind.Fault && vector != Vectors.DB) pushedFlags |= Fl.RF;
        ushort oldCs = cpu.Segs[Seg.CS].Selector;

        Span<uint> frame = stackalloc uint[6];
        int n = 0;
        SegmentCache ss;
        uint sp;
        uint ssAddr = 0;
        ulong ssDesc = 0;
        bool stackSwitch = newCpl != cpl;
        if (stackSwitch)
        {
            if (!cpu.ReadTssStack(newCpl, ext, out ushort ssSel, out uint newEsp)) return false;
            if (!cpu.CheckStackSegment(ssSel, newCpl, Vectors.TS, ext, out ss, out ssAddr, out ssDesc)) return false;
            sp = ss.Big ? newEsp : newEsp & 0xFFFF;
            frame[n++] = cpu.Segs[Seg.SS].Selector;
            frame[n++] = cpu.Esp;
        }
        else
        {
            ss = cpu.Segs[Seg.SS];
            sp = cpu.Esp;
        }
        frame[n++] = pushedFlags;
        frame[n++] = oldCs;
        frame[n++] = retEip;
        if (e.HasErrorCode) frame[n++] = e.ErrorCode;
        uint ssErr = stackSwitch ? (ss.Selector & 0xFFFCu) | ext : ext;
        uint espBefore = sp;
        if (!cpu.PushOnStack(ss, ref sp, gsize, frame[..n], newCpl == 3, ssErr)) return false;
        var cs = SegmentCache.FromDescriptor((ushort)((csSel & 0xFFFC) | newCpl), cdesc | (1ul << 40));
        if (target > cs.Limit) { cpu.RaiseGp(ext); return false; }
        if (!cpu.MarkAccessed(caddr, cdesc)) return false;
        if (stackSwitch && !cpu.MarkAccessed(ssAddr, ssDesc)) return false;

        if (stackSwitch)
        {
            cpu.Segs[Seg.SS] = ss;
            cpu.Esp = ss.Big ? sp : (espBefore & 0xFFFF0000u) | (sp & 0xFFFF);
        }
        else cpu.Esp = ss.Big ? sp : (cpu.Esp & 0xFFFF0000u) | (sp & 0xFFFF);
        cpu.CommitCs(cs, newCpl);
        uint cleared = Fl.TF | Fl.NT | Fl.RF | Fl.VM;
        if (type is SysType.IntGate16 or SysType.IntGate32) cleared |= Fl.IF;
        cpu.Eflags = flags & ~cleared;
        cpu.Eip = target;
        return true;
    }

    public virtual void Halt(X86Cpu cpu)
    {
        Halts++;
        if (StopOnHalt) cpu.RequestStop();
    }

    public virtual ulong ReadTsc(X86Cpu cpu) => cpu.Icount;

    public virtual void Cpuid(X86Cpu cpu, uint leaf, uint subleaf, out uint eax, out uint ebx, out uint ecx, out uint edx)
    {
        eax = ebx = ecx = edx = 0;
    }

    public virtual uint PortIn(X86Cpu cpu, ushort port, int size) => 0xFFFFFFFF;
    public virtual void PortOut(X86Cpu cpu, ushort port, int size, uint value) { }

    public virtual bool ReadMsr(X86Cpu cpu, uint msr, out ulong value)
    {
        value = 0;
        return false;
    }

    public virtual bool WriteMsr(X86Cpu cpu, uint msr, ulong value) => false;
}
