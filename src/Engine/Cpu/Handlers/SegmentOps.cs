using Iced.Intel;
using Replayvisor.Engine.Cpu.Decode;

namespace Replayvisor.Engine.Cpu.Handlers;

/// <summary>
/// Segment-register instructions: mov to/from sreg, push/pop sreg, lds/les/lfs/lgs/lss, and the
/// descriptor inspection instructions lar, lsl, verr, verw, arpl (SDM vol. 2).
/// </summary>
internal static unsafe class SegmentOps
{
    public static delegate*<X86Cpu, ref DecodedInsn, void> Select(ref DecodedInsn d)
    {
        var insn = d.Insn;
        switch (insn.Mnemonic)
        {
            case Mnemonic.Mov:
                if (insn.Op0Kind == OpKind.Register && insn.Op0Register.IsSegmentRegister())
                {
                    if (insn.Op0Register == Register.CS) return &Misc.Ud;
                    d.Cc = InsnDecoder.SegIndex(insn.Op0Register);
                    d.Size = 2;
                    return &MovToSreg;
                }
                if (insn.Op1Kind == OpKind.Register && insn.Op1Register.IsSegmentRegister())
                {
                    d.Cc = InsnDecoder.SegIndex(insn.Op1Register);
                    d.Size = d.Op0IsMem ? (byte)2 : (byte)insn.Op0Register.GetSize();
                    return &MovFromSreg;
                }
                return null;
            case Mnemonic.Push:
                if (insn.Op0Kind != OpKind.Register || !insn.Op0Register.IsSegmentRegister()) return null;
                d.Cc = InsnDecoder.SegIndex(insn.Op0Register);
                d.Size = (byte)(insn.Code.ToOpCode().OperandSize == 16 ? 2 : 4);
                return &PushSreg;
            case Mnemonic.Pop:
                if (insn.Op0Kind != OpKind.Register || !insn.Op0Register.IsSegmentRegister()) return null;
                if (insn.Op0Register == Register.CS) return &Misc.Ud;
                d.Cc = InsnDecoder.SegIndex(insn.Op0Register);
                d.Size = (byte)(insn.Code.ToOpCode().OperandSize == 16 ? 2 : 4);
                return &PopSreg;
            case Mnemonic.Lds: return LoadFar(ref d, Seg.DS);
            case Mnemonic.Les: return LoadFar(ref d, Seg.ES);
            case Mnemonic.Lfs: return LoadFar(ref d, Seg.FS);
            case Mnemonic.Lgs: return LoadFar(ref d, Seg.GS);
            case Mnemonic.Lss: return LoadFar(ref d, Seg.SS);
            case Mnemonic.Lar: d.Cc = 0; return &LarLsl;
            case Mnemonic.Lsl: d.Cc = 1; return &LarLsl;
            case Mnemonic.Verr: d.Cc = 0; return &Verify;
            case Mnemonic.Verw: d.Cc = 1; return &Verify;
            case Mnemonic.Arpl: d.Size = 2; return &Arpl;
            default: return null;
        }
    }

    private static delegate*<X86Cpu, ref DecodedInsn, void> LoadFar(ref DecodedInsn d, int seg)
    {
        if (!d.Op1IsMem) return &Misc.Ud;
        d.Cc = (byte)seg;
        d.Size = (byte)d.Insn.Op0Register.GetSize();
        return &LoadFarPointer;
    }

    /// <summary>mov sreg, r/m16 (SDM vol. 2 MOV). mov ss is checked as a stack segment.</summary>
    private static void MovToSreg(X86Cpu c, ref DecodedInsn d)
    {
        ushort sel = (ushort)(d.Op1IsMem ? c.Read16(d.MemSeg, c.Ea(ref d)) : c.GetReg(d.R1, 2));
        if (c.Faulted) return;
        if (c.LoadSegment(d.Cc, sel) && d.Cc == Seg.SS) c.BeginInterruptShadow();
    }

    /// <summary>mov r/m, sreg: memory gets 16 bits; a 32-bit register gets the zero-extended selector (P6 and later).</summary>
    private static void MovFromSreg(X86Cpu c, ref DecodedInsn d)
    {
        uint sel = c.Segs[d.Cc].Selector;
        if (d.Op0IsMem) c.Write16(d.MemSeg, c.Ea(ref d), (ushort)sel);
        else c.SetReg(d.R0, d.Size, sel);
    }

    /// <summary>push sreg: with a 32-bit operand size ESP moves by 4 but only the low 16 bits are written (P6 and later).</summary>
    private static void PushSreg(X86Cpu c, ref DecodedInsn d)
    {
        ushort sel = c.Segs[d.Cc].Selector;
        if (d.Size == 2) { c.Push(sel, 2); return; }
        uint mask = c.Stack32 ? 0xFFFFFFFFu : 0xFFFFu;
        uint sp = (c.StackPointer - 4) & mask;
        if (!c.ProbeWrite(Seg.SS, sp, 4)) return;
        c.Write16(Seg.SS, sp, sel);
        if (c.Faulted) return;
        c.Esp = c.Stack32 ? sp : (c.Esp & 0xFFFF0000u) | sp;
    }

    /// <summary>pop sreg: the selector is read, the segment loaded, then ESP moves (SDM vol. 2 POP).</summary>
    private static void PopSreg(X86Cpu c, ref DecodedInsn d)
    {
        int size = d.Size;
        uint v = c.PeekStack(size);
        if (c.Faulted) return;
        bool s32 = c.Stack32;
        uint newSp = c.StackPointer + (uint)size;
        uint esp = s32 ? newSp : (c.Esp & 0xFFFF0000u) | (newSp & 0xFFFF);
        if (!c.LoadSegment(d.Cc, (ushort)v)) return;
        c.Esp = esp;
        if (d.Cc == Seg.SS) c.BeginInterruptShadow();
    }

    /// <summary>lds/les/lfs/lgs/lss r, m16:16 or m16:32: offset first, then the selector (SDM vol. 2 LDS).</summary>
    private static void LoadFarPointer(X86Cpu c, ref DecodedInsn d)
    {
        int size = d.Size;
        uint ea = c.Ea(ref d);
        uint off = c.Read(d.MemSeg, ea, size);
        if (c.Faulted) return;
        uint selEa = d.AddrSize == 2 ? (ea + (uint)size) & 0xFFFF : ea + (uint)size;
        ushort sel = c.Read16(d.MemSeg, selEa);
        if (c.Faulted) return;
        if (!c.LoadSegment(d.Cc, sel)) return;
        c.SetReg(d.R0, size, off);
    }

    private static ushort ReadSelectorOperand(X86Cpu c, ref DecodedInsn d, bool op1)
    {
        bool mem = op1 ? d.Op1IsMem : d.Op0IsMem;
        if (mem) return c.Read16(d.MemSeg, c.Ea(ref d));
        return (ushort)c.GetReg(op1 ? d.R1 : d.R0, 2);
    }

    /// <summary>
    /// Reads a descriptor for lar/lsl/verr/verw without faulting on selector problems: false (ZF=0) for a null
    /// selector or an index beyond the table. A #PF reading the table is still raised.
    /// </summary>
    private static bool Peek(X86Cpu c, ushort sel, out ulong desc)
    {
        desc = 0;
        if ((sel & 0xFFFC) == 0) return false;
        uint index = (uint)sel & 0xFFF8;
        uint tbase, tlimit;
        if ((sel & 4) != 0)
        {
            if (!c.Ldtr.Usable) return false;
            tbase = c.Ldtr.Base; tlimit = c.Ldtr.Limit;
        }
        else { tbase = c.GdtrBase; tlimit = c.GdtrLimit; }
        if ((ulong)index + 7 > tlimit) return false;
        desc = c.ReadSystem(tbase + index, 8);
        return !c.Faulted;
    }

    /// <summary>Privilege rule for lar/lsl/verr/verw: unless conforming code, DPL ≥ CPL and DPL ≥ RPL.</summary>
    private static bool Visible(X86Cpu c, ushort sel, ulong desc) =>
        Desc.Conforming(desc) || (Desc.Dpl(desc) >= c.Cpl && Desc.Dpl(desc) >= (sel & 3));

    /// <summary>lar (Cc=0) / lsl (Cc=1): ZF=1 and the access rights or byte limit if the descriptor is visible (SDM vol. 2 LAR, LSL).</summary>
    private static void LarLsl(X86Cpu c, ref DecodedInsn d)
    {
        ushort sel = ReadSelectorOperand(c, ref d, true);
        if (c.Faulted) return;
        bool ok = Peek(c, sel, out ulong desc);
        if (c.Faulted) return;
        if (ok)
        {
            if (!Desc.IsSegment(desc))
            {
                int t = Desc.Type(desc);
                ok = d.Cc == 0
                    ? t is SysType.Tss16Avail or SysType.Ldt or SysType.Tss16Busy or SysType.CallGate16 or SysType.TaskGate
                        or SysType.Tss32Avail or SysType.Tss32Busy or SysType.CallGate32
                    : t is SysType.Tss16Avail or SysType.Ldt or SysType.Tss16Busy or SysType.Tss32Avail or SysType.Tss32Busy;
            }
            ok = ok && Visible(c, sel, desc);
        }
        if (!ok) { c.SetArith(Fl.ZF, 0); return; }
        uint v;
        if (d.Cc == 0) v = (uint)(desc >> 32) & 0x00FFFF00u;
        else v = SegmentCache.FromDescriptor(sel, desc).Limit;
        c.SetReg(d.R0, d.Size, v);
        c.SetArith(Fl.ZF, Fl.ZF);
    }

    /// <summary>verr (Cc=0) / verw (Cc=1): ZF=1 if the segment is readable / writable at CPL and RPL (SDM vol. 2 VERR, VERW).</summary>
    private static void Verify(X86Cpu c, ref DecodedInsn d)
    {
        ushort sel = ReadSelectorOperand(c, ref d, false);
        if (c.Faulted) return;
        bool ok = Peek(c, sel, out ulong desc);
        if (c.Faulted) return;
        ok = ok && (d.Cc == 0 ? Desc.Readable(desc) : Desc.Writable(desc)) && Visible(c, sel, desc);
        c.SetArith(Fl.ZF, ok ? Fl.ZF : 0);
    }

    /// <summary>arpl r/m16, r16: raise the destination RPL to the source RPL, ZF=1 if changed (SDM vol. 2 ARPL).</summary>
    private static void Arpl(X86Cpu c, ref DecodedInsn d)
    {
        uint ea = d.Op0IsMem ? c.Ea(ref d) : 0;
        uint dst = d.Op0IsMem ? c.Read16(d.MemSeg, ea) : c.GetReg(d.R0, 2);
        if (c.Faulted) return;
        uint src = c.GetReg(d.R1, 2);
        if ((dst & 3) < (src & 3))
        {
            uint v = (dst & ~3u) | (src & 3);
            if (d.Op0IsMem) { c.Write16(d.MemSeg, ea, (ushort)v); if (c.Faulted) return; }
            else c.SetReg(d.R0, 2, v);
            c.SetArith(Fl.ZF, Fl.ZF);
        }
        else c.SetArith(Fl.ZF, 0);
    }
}
