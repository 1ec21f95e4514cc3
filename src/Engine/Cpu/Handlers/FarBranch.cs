using Iced.Intel;
using Replayvisor.Engine.Cpu.Decode;

namespace Replayvisor.Engine.Cpu.Handlers;

/// <summary>
/// Protected-mode far transfers (SDM vol. 2 JMP, CALL, RET, IRET; vol. 3 §5.8): jmp/call far to code
/// segments and through call gates (with the inter-privilege stack switch), ret far to the same or an
/// outer ring, iret to the same or an outer ring.
/// Not supported (documented): task switches — a jmp/call to a TSS or task gate raises #GP(selector), and an
/// iret with NT=1 (a task return) raises #GP(0); iret to virtual-8086 mode (EFLAGS.VM=1 at CPL 0) stops the
/// machine as unsupported.
/// Every path reads and validates everything first, then writes the new stack (if any), then commits
/// registers, so a faulting transfer leaves registers unchanged.
/// </summary>
internal static unsafe class FarBranch
{
    public static delegate*<X86Cpu, ref DecodedInsn, void> Select(ref DecodedInsn d)
    {
        var insn = d.Insn;
        switch (insn.Mnemonic)
        {
            case Mnemonic.Jmp:
            case Mnemonic.Call:
            {
                d.Cc = (byte)(insn.Mnemonic == Mnemonic.Call ? 1 : 0);
                if (insn.Op0Kind is OpKind.FarBranch16 or OpKind.FarBranch32)
                {
                    d.Size = (byte)(insn.Op0Kind == OpKind.FarBranch16 ? 2 : 4);
                    return &FarDirect;
                }
                if (insn.Op0Kind == OpKind.Memory && insn.MemorySize is MemorySize.SegPtr16 or MemorySize.SegPtr32)
                {
                    d.Size = (byte)(insn.MemorySize == MemorySize.SegPtr16 ? 2 : 4);
                    return &FarIndirect;
                }
                return null;
            }
            case Mnemonic.Retf:
                d.Size = (byte)(insn.Code.ToOpCode().OperandSize == 16 ? 2 : 4);
                d.Imm = insn.OpCount > 0 ? (uint)insn.Immediate16 : 0;
                return &RetFar;
            case Mnemonic.Iret:
            case Mnemonic.Iretd:
                d.Size = (byte)(insn.Mnemonic == Mnemonic.Iret ? 2 : 4);
                return &Iret;
            default:
                return null;
        }
    }

    private static void FarDirect(X86Cpu c, ref DecodedInsn d) => Transfer(c, (ushort)d.Imm2, d.Imm, d.Size, d.Cc != 0);

    private static void FarIndirect(X86Cpu c, ref DecodedInsn d)
    {
        int size = d.Size;
        uint ea = c.Ea(ref d);
        uint off = c.Read(d.MemSeg, ea, size);
        if (c.Faulted) return;
        uint selEa = d.AddrSize == 2 ? (ea + (uint)size) & 0xFFFF : ea + (uint)size;
        ushort sel = c.Read16(d.MemSeg, selEa);
        if (c.Faulted) return;
        Transfer(c, sel, off, size, d.Cc != 0);
    }

    private static uint Mask(int size) => size == 2 ? 0xFFFFu : 0xFFFFFFFFu;

    /// <summary>jmp far / call far to sel:off with operand size size (SDM vol. 2 JMP, CALL protected-mode pseudocode).</summary>
    private static void Transfer(X86Cpu c, ushort sel, uint off, int size, bool call)
    {
        int cpl = c.Cpl;
        if ((sel & 0xFFFC) == 0) { c.RaiseGp(0); return; }
        if (!c.FetchDescriptor(sel, Vectors.GP, 0, out ulong desc, out uint addr)) return;
        uint err = sel & 0xFFFCu;
        if (Desc.IsSegment(desc))
        {
            if (!Desc.IsCode(desc)) { c.RaiseGp(err); return; }
            if (Desc.Conforming(desc) ? Desc.Dpl(desc) > cpl : (sel & 3) > cpl || Desc.Dpl(desc) != cpl) { c.RaiseGp(err); return; }
            if (!Desc.Present(desc)) { c.RaiseFault(Vectors.NP, err); return; }
            SameLevel(c, (ushort)((sel & 0xFFFC) | cpl), desc, addr, off & Mask(size), size, call);
            return;
        }
        int t = Desc.Type(desc);
        if (t != SysType.CallGate32 && t != SysType.CallGate16)
        {
            // TSS, task gate (task switches are not supported) or any other system type.
            c.RaiseGp(err);
            return;
        }
        // Call gate (SDM vol. 3 §5.8.4): gate DPL ≥ CPL and ≥ RPL.
        int gdpl = Desc.Dpl(desc);
        if (gdpl < cpl || gdpl < (sel & 3)) { c.RaiseGp(err); return; }
        if (!Desc.Present(desc)) { c.RaiseFault(Vectors.NP, err); return; }
        ushort csSel = Desc.GateSelector(desc);
        uint target = Desc.GateOffset(desc);
        int gsize = Desc.GateSize(desc);
        if ((csSel & 0xFFFC) == 0) { c.RaiseGp(0); return; }
        if (!c.FetchDescriptor(csSel, Vectors.GP, 0, out ulong cdesc, out uint caddr)) return;
        uint cerr = csSel & 0xFFFCu;
        int dpl = Desc.Dpl(cdesc);
        if (!Desc.IsCode(cdesc) || dpl > cpl) { c.RaiseGp(cerr); return; }
        bool conforming = Desc.Conforming(cdesc);
        if (!call && !conforming && dpl != cpl) { c.RaiseGp(cerr); return; }
        if (!Desc.Present(cdesc)) { c.RaiseFault(Vectors.NP, cerr); return; }
        if (call && !conforming && dpl < cpl)
        {
            MorePrivileged(c, csSel, cdesc, caddr, target, gsize, Desc.GateParamCount(desc));
            return;
        }
        SameLevel(c, (ushort)((csSel & 0xFFFC) | cpl), cdesc, caddr, target, gsize, call);
    }

    /// <summary>A far jmp or call that stays at the current CPL: push CS:EIP for a call, check the target offset, commit.</summary>
    private static void SameLevel(X86Cpu c, ushort newSel, ulong desc, uint addr, uint off, int size, bool call)
    {
        var cs = SegmentCache.FromDescriptor(newSel, desc | (1ul << 40));
        uint esp = c.Esp;
        if (call)
        {
            Span<uint> frame = stackalloc uint[2];
            frame[0] = c.Segs[Seg.CS].Selector;
            frame[1] = c.Eip;
            if (!c.PushOnStack(c.Segs[Seg.SS], ref esp, size, frame, c.Cpl == 3, 0)) return;
        }
        if (off > cs.Limit) { c.RaiseGp(0); return; }
        if (!c.MarkAccessed(addr, desc)) return;
        c.Esp = esp;
        c.CommitCs(cs, c.Cpl);
        c.Eip = off;
        c.Exit |= CpuExit.Branch;
    }

    /// <summary>
    /// call through a gate to a more privileged non-conforming segment: new SS:ESP from the TSS for the target DPL,
    /// push old SS, ESP, the gate's parameter count of stack slots, old CS, EIP (SDM vol. 2 CALL "MORE-PRIVILEGE").
    /// </summary>
    private static void MorePrivileged(X86Cpu c, ushort csSel, ulong cdesc, uint caddr, uint target, int gsize, int paramCount)
    {
        int newCpl = Desc.Dpl(cdesc);
        if (!c.ReadTssStack(newCpl, 0, out ushort ssSel, out uint newEsp)) return;
        if (!c.CheckStackSegment(ssSel, newCpl, Vectors.TS, 0, out SegmentCache ss, out uint saddr, out ulong sdesc)) return;
        Span<uint> frame = stackalloc uint[4 + 31];
        int n = 0;
        frame[n++] = c.Segs[Seg.SS].Selector;
        frame[n++] = c.Esp;
        for (int i = paramCount - 1; i >= 0; i--)
        {
            uint v = c.PeekStack(gsize, (uint)(i * gsize));
            if (c.Faulted) return;
            frame[n++] = v;
        }
        frame[n++] = c.Segs[Seg.CS].Selector;
        frame[n++] = c.Eip;
        uint sp = newEsp;
        if (!ss.Big) sp &= 0xFFFF;
        if (!c.PushOnStack(ss, ref sp, gsize, frame[..n], newCpl == 3, ssSel & 0xFFFCu)) return;
        var cs = SegmentCache.FromDescriptor((ushort)((csSel & 0xFFFC) | newCpl), cdesc | (1ul << 40));
        if (target > cs.Limit) { c.RaiseGp(0); return; }
        if (!c.MarkAccessed(saddr, sdesc) || !c.MarkAccessed(caddr, cdesc)) return;
        c.Segs[Seg.SS] = ss;
        c.Esp = ss.Big ? sp : (newEsp & 0xFFFF0000u) | (sp & 0xFFFF);
        c.CommitCs(cs, newCpl);
        c.Eip = target;
        c.Exit |= CpuExit.Branch;
    }

    /// <summary>
    /// Checks the CS selector popped by ret far or iret (SDM vol. 2 RET/IRET protected-mode pseudocode):
    /// null → #GP(0); RPL &lt; CPL, not code, conforming with DPL &gt; RPL, non-conforming with DPL ≠ RPL → #GP(sel);
    /// not present → #NP(sel).
    /// </summary>
    private static bool CheckReturnCs(X86Cpu c, ushort sel, out ulong desc, out uint addr)
    {
        desc = 0; addr = 0;
        if ((sel & 0xFFFC) == 0) { c.RaiseGp(0); return false; }
        if (!c.FetchDescriptor(sel, Vectors.GP, 0, out desc, out addr)) return false;
        uint err = sel & 0xFFFCu;
        int rpl = sel & 3;
        if (rpl < c.Cpl || !Desc.IsCode(desc)) { c.RaiseGp(err); return false; }
        if (Desc.Conforming(desc) ? Desc.Dpl(desc) > rpl : Desc.Dpl(desc) != rpl) { c.RaiseGp(err); return false; }
        if (!Desc.Present(desc)) { c.RaiseFault(Vectors.NP, err); return false; }
        return true;
    }

    /// <summary>ret far [imm16] (SDM vol. 2 RET): same privilege, or to an outer ring popping SS:ESP.</summary>
    private static void RetFar(X86Cpu c, ref DecodedInsn d)
    {
        int size = d.Size;
        uint imm = d.Imm & 0xFFFF;
        uint eip = c.PeekStack(size);
        if (c.Faulted) return;
        ushort sel = (ushort)c.PeekStack(size, (uint)size);
        if (c.Faulted) return;
        if (!CheckReturnCs(c, sel, out ulong desc, out uint addr)) return;
        int rpl = sel & 3;
        var cs = SegmentCache.FromDescriptor(sel, desc | (1ul << 40));
        eip &= Mask(size);
        if (rpl == c.Cpl)
        {
            if (eip > cs.Limit) { c.RaiseGp(0); return; }
            if (!c.MarkAccessed(addr, desc)) return;
            c.AdjustStack((uint)(2 * size) + imm);
            c.CommitCs(cs, rpl);
            c.Eip = eip;
            c.Exit |= CpuExit.Branch;
            return;
        }
        uint newEsp = c.PeekStack(size, (uint)(2 * size) + imm);
        if (c.Faulted) return;
        ushort ssSel = (ushort)c.PeekStack(size, (uint)(3 * size) + imm);
        if (c.Faulted) return;
        if (!c.CheckStackSegment(ssSel, rpl, Vectors.GP, 0, out SegmentCache ss, out uint saddr, out ulong sdesc)) return;
        if (eip > cs.Limit) { c.RaiseGp(0); return; }
        if (!c.MarkAccessed(addr, desc) || !c.MarkAccessed(saddr, sdesc)) return;
        OuterCommit(c, cs, rpl, ss, (newEsp & Mask(size)) + imm);
        c.Eip = eip;
    }

    /// <summary>Loads CS, CPL, SS and ESP for a return to an outer ring, then nulls inaccessible data segments.</summary>
    private static void OuterCommit(X86Cpu c, in SegmentCache cs, int rpl, in SegmentCache ss, uint esp)
    {
        c.CommitCs(cs, rpl);
        c.Segs[Seg.SS] = ss;
        c.Esp = ss.Big ? esp : (c.Esp & 0xFFFF0000u) | (esp & 0xFFFF);
        c.NullInaccessibleDataSegments();
        c.Exit |= CpuExit.Branch;
    }

    /// <summary>
    /// iret in protected mode (SDM vol. 2 IRET): pops EIP, CS, EFLAGS (and ESP, SS for an outer ring). EFLAGS:
    /// IOPL changes only at CPL 0, IF only if CPL ≤ IOPL, VIF/VIP only at CPL 0; RF, AC, ID only with a 32-bit
    /// operand size. NT=1 (task return) raises #GP(0) (task switching is not supported); a return to
    /// virtual-8086 mode stops the machine as unsupported.
    /// </summary>
    private static void Iret(X86Cpu c, ref DecodedInsn d)
    {
        int size = d.Size;
        int cpl = c.Cpl;
        uint oldFlags = c.Eflags;
        if ((oldFlags & Fl.NT) != 0) { c.RaiseGp(0); return; }
        uint eip = c.PeekStack(size);
        if (c.Faulted) return;
        ushort sel = (ushort)c.PeekStack(size, (uint)size);
        if (c.Faulted) return;
        uint fl = c.PeekStack(size, (uint)(2 * size));
        if (c.Faulted) return;
        if (size == 4 && (fl & Fl.VM) != 0 && cpl == 0) { c.StopUnsupported(ref d); return; }
        if (!CheckReturnCs(c, sel, out ulong desc, out uint addr)) return;
        int rpl = sel & 3;
        var cs = SegmentCache.FromDescriptor(sel, desc | (1ul << 40));
        eip &= Mask(size);

        uint changeable = Fl.CF | Fl.PF | Fl.AF | Fl.ZF | Fl.SF | Fl.TF | Fl.DF | Fl.OF | Fl.NT;
        if (size == 4) changeable |= Fl.RF | Fl.AC | Fl.ID;
        if (cpl <= c.Iopl) changeable |= Fl.IF;
        if (cpl == 0) changeable |= Fl.IOPL | (size == 4 ? Fl.VIF | Fl.VIP : 0);
        uint newFlags = (oldFlags & ~changeable) | (fl & changeable);

        if (rpl == cpl)
        {
            if (eip > cs.Limit) { c.RaiseGp(0); return; }
            if (!c.MarkAccessed(addr, desc)) return;
            c.AdjustStack((uint)(3 * size));
            c.Eflags = newFlags;
            c.CommitCs(cs, rpl);
            c.Eip = eip;
            c.Exit |= CpuExit.Branch;
            return;
        }
        uint newEsp = c.PeekStack(size, (uint)(3 * size));
        if (c.Faulted) return;
        ushort ssSel = (ushort)c.PeekStack(size, (uint)(4 * size));
        if (c.Faulted) return;
        if (!c.CheckStackSegment(ssSel, rpl, Vectors.GP, 0, out SegmentCache ss, out uint saddr, out ulong sdesc)) return;
        if (eip > cs.Limit) { c.RaiseGp(0); return; }
        if (!c.MarkAccessed(addr, desc) || !c.MarkAccessed(saddr, sdesc)) return;
        c.Eflags = newFlags;
        OuterCommit(c, cs, rpl, ss, newEsp & Mask(size));
        c.Eip = eip;
    }
}
