using Iced.Intel;
using Replayvisor.Engine.Cpu.Decode;

namespace Replayvisor.Engine.Cpu.Handlers;

/// <summary>
/// System-state instructions (SDM vol. 2; vol. 3 ch. 2): sgdt/sidt/sldt/str/smsw (allowed at any CPL on
/// P6, no UMIP), lgdt/lidt/lldt/ltr/lmsw, mov to/from CR0-CR4 and DR0-DR7, clts, invlpg, wbinvd/invd,
/// rdmsr/wrmsr. Privileged ones raise #GP(0) unless CPL is 0; in a PV guest that #GP(0) is what Xen
/// traps and emulates (docs/xen-abi.md §12).
/// </summary>
internal static unsafe class SystemOps
{
    public const uint MsrEfer = 0xC0000080;
    private const ulong EferNxe = 0x800;
    /// <summary>CR4 bits this CPU accepts (VME..OSXMMEXCPT); any other set bit is reserved: #GP(0).</summary>
    private const uint Cr4Valid = 0x7FF;

    public static delegate*<X86Cpu, ref DecodedInsn, void> Select(ref DecodedInsn d)
    {
        var insn = d.Insn;
        switch (insn.Mnemonic)
        {
            case Mnemonic.Sgdt: d.Cc = 0; return d.Op0IsMem ? &StoreTable : &Misc.Ud;
            case Mnemonic.Sidt: d.Cc = 1; return d.Op0IsMem ? &StoreTable : &Misc.Ud;
            case Mnemonic.Lgdt: d.Cc = 0; return d.Op0IsMem ? &LoadTable : &Misc.Ud;
            case Mnemonic.Lidt: d.Cc = 1; return d.Op0IsMem ? &LoadTable : &Misc.Ud;
            case Mnemonic.Sldt: d.Cc = 0; return &StoreSystemSelector;
            case Mnemonic.Str: d.Cc = 1; return &StoreSystemSelector;
            case Mnemonic.Smsw: return &Smsw;
            case Mnemonic.Lldt: return &Lldt;
            case Mnemonic.Ltr: return &Ltr;
            case Mnemonic.Lmsw: return &Lmsw;
            case Mnemonic.Clts: return &Clts;
            case Mnemonic.Invlpg: return d.Op0IsMem ? &Invlpg : &Misc.Ud;
            case Mnemonic.Wbinvd: case Mnemonic.Invd: return &PrivilegedNop;
            case Mnemonic.Rdmsr: return &Rdmsr;
            case Mnemonic.Wrmsr: return &Wrmsr;
            case Mnemonic.Mov:
                if (insn.Op0Kind == OpKind.Register && insn.Op0Register.IsCR()) { d.Cc = d.R0; return &MovToCr; }
                if (insn.Op1Kind == OpKind.Register && insn.Op1Register.IsCR()) { d.Cc = d.R1; return &MovFromCr; }
                if (insn.Op0Kind == OpKind.Register && insn.Op0Register.IsDR()) { d.Cc = d.R0; return &MovToDr; }
                if (insn.Op1Kind == OpKind.Register && insn.Op1Register.IsDR()) { d.Cc = d.R1; return &MovFromDr; }
                return null;
            default: return null;
        }
    }

    private static bool Privileged(X86Cpu c)
    {
        if (c.Cpl == 0) return true;
        c.RaiseGp(0);
        return false;
    }

    /// <summary>sgdt/sidt m: limit (16 bits) then base (32 bits; 24 bits with a 16-bit operand size).</summary>
    private static void StoreTable(X86Cpu c, ref DecodedInsn d)
    {
        uint ea = c.Ea(ref d);
        uint limit = d.Cc == 0 ? c.GdtrLimit : c.IdtrLimit;
        uint bas = d.Cc == 0 ? c.GdtrBase : c.IdtrBase;
        if (d.Insn.Code.ToOpCode().OperandSize == 16) bas &= 0x00FFFFFF;
        if (!c.ProbeWrite(d.MemSeg, ea, 6)) return;
        c.Write16(d.MemSeg, ea, (ushort)limit);
        if (c.Faulted) return;
        c.Write32(d.MemSeg, ea + 2, bas);
    }

    /// <summary>lgdt/lidt m (CPL 0): reads both fields before loading either.</summary>
    private static void LoadTable(X86Cpu c, ref DecodedInsn d)
    {
        if (!Privileged(c)) return;
        uint ea = c.Ea(ref d);
        uint limit = c.Read16(d.MemSeg, ea);
        if (c.Faulted) return;
        uint bas = c.Read32(d.MemSeg, ea + 2);
        if (c.Faulted) return;
        if (d.Insn.Code.ToOpCode().OperandSize == 16) bas &= 0x00FFFFFF;
        if (d.Cc == 0) { c.GdtrBase = bas; c.GdtrLimit = limit; }
        else { c.IdtrBase = bas; c.IdtrLimit = limit; }
    }

    /// <summary>sldt/str r/m: memory gets 16 bits, a 32-bit register the zero-extended selector.</summary>
    private static void StoreSystemSelector(X86Cpu c, ref DecodedInsn d)
    {
        uint sel = d.Cc == 0 ? c.Ldtr.Selector : c.Tr.Selector;
        if (d.Op0IsMem) c.Write16(d.MemSeg, c.Ea(ref d), (ushort)sel);
        else c.SetReg(d.R0, d.Size, sel);
    }

    /// <summary>smsw r/m: memory gets the low 16 bits of CR0; a 32-bit register all of CR0.</summary>
    private static void Smsw(X86Cpu c, ref DecodedInsn d)
    {
        if (d.Op0IsMem) c.Write16(d.MemSeg, c.Ea(ref d), (ushort)c.Cr0);
        else c.SetReg(d.R0, d.Size, c.Cr0);
    }

    private static ushort ReadSel(X86Cpu c, ref DecodedInsn d) =>
        d.Op0IsMem ? c.Read16(d.MemSeg, c.Ea(ref d)) : (ushort)c.GetReg(d.R0, 2);

    /// <summary>lldt r/m16 (SDM vol. 2 LLDT): null → unusable LDTR; TI=1, beyond the GDT or not an LDT → #GP(sel); not present → #NP(sel).</summary>
    private static void Lldt(X86Cpu c, ref DecodedInsn d)
    {
        if (!Privileged(c)) return;
        ushort sel = ReadSel(c, ref d);
        if (c.Faulted) return;
        if ((sel & 0xFFFC) == 0) { c.Ldtr = SegmentCache.Null(sel); return; }
        uint err = sel & 0xFFFCu;
        if ((sel & 4) != 0) { c.RaiseGp(err); return; }
        if (!c.FetchDescriptor(sel, Vectors.GP, 0, out ulong desc, out _)) return;
        if (Desc.TypeS(desc) != SysType.Ldt) { c.RaiseGp(err); return; }
        if (!Desc.Present(desc)) { c.RaiseFault(Vectors.NP, err); return; }
        c.Ldtr = SegmentCache.FromDescriptor(sel, desc);
    }

    /// <summary>ltr r/m16 (SDM vol. 2 LTR): null → #GP(0); TI=1, beyond the GDT or not an available TSS → #GP(sel); not present → #NP(sel); marks the TSS busy.</summary>
    private static void Ltr(X86Cpu c, ref DecodedInsn d)
    {
        if (!Privileged(c)) return;
        ushort sel = ReadSel(c, ref d);
        if (c.Faulted) return;
        if ((sel & 0xFFFC) == 0) { c.RaiseGp(0); return; }
        uint err = sel & 0xFFFCu;
        if ((sel & 4) != 0) { c.RaiseGp(err); return; }
        if (!c.FetchDescriptor(sel, Vectors.GP, 0, out ulong desc, out uint addr)) return;
        int t = Desc.TypeS(desc);
        if (t != SysType.Tss32Avail && t != SysType.Tss16Avail) { c.RaiseGp(err); return; }
        if (!Desc.Present(desc)) { c.RaiseFault(Vectors.NP, err); return; }
        ulong busy = desc | (2ul << 40);
        c.WriteSystem(addr + 5, 1, (ulong)Desc.Access(busy));
        if (c.Faulted) return;
        c.Tr = SegmentCache.FromDescriptor(sel, busy);
    }

    /// <summary>lmsw r/m16: loads PE, MP, EM, TS; PE can be set but not cleared (SDM vol. 2 LMSW).</summary>
    private static void Lmsw(X86Cpu c, ref DecodedInsn d)
    {
        if (!Privileged(c)) return;
        uint v = ReadSel(c, ref d);
        if (c.Faulted) return;
        c.Cr0 = (c.Cr0 & ~0xEu) | (v & 0xF);
    }

    private static void Clts(X86Cpu c, ref DecodedInsn d)
    {
        if (Privileged(c)) c.Cr0 &= ~Cr0Bits.TS;
    }

    /// <summary>invlpg m: drops the TLB entry of the linear address (segment base + EA); no limit check.</summary>
    private static void Invlpg(X86Cpu c, ref DecodedInsn d)
    {
        if (!Privileged(c)) return;
        c.InvalidatePage(c.Segs[d.MemSeg].Base + c.Ea(ref d));
    }

    /// <summary>wbinvd/invd: no caches to manage; privileged.</summary>
    private static void PrivilegedNop(X86Cpu c, ref DecodedInsn d) => Privileged(c);

    /// <summary>mov r32, crN (SDM vol. 2 MOV—Move to/from Control Registers): CR1, CR5-7 → #UD; CPL≠0 → #GP(0).</summary>
    private static void MovFromCr(X86Cpu c, ref DecodedInsn d)
    {
        int cr = d.Cc;
        if (cr is 1 or > 4) { c.RaiseUd(); return; }
        if (!Privileged(c)) return;
        uint v = cr switch { 0 => c.Cr0, 2 => c.Cr2, 3 => c.Cr3, _ => c.Cr4 };
        c.Gpr[d.R0] = v;
    }

    private static void MovToCr(X86Cpu c, ref DecodedInsn d)
    {
        int cr = d.Cc;
        if (cr is 1 or > 4) { c.RaiseUd(); return; }
        if (!Privileged(c)) return;
        uint v = c.Gpr[d.R1];
        switch (cr)
        {
            case 0: WriteCr0(c, ref d, v); break;
            case 2: c.Cr2 = v; break;
            case 3: c.Cr3 = v; c.FlushTlbNonGlobal(); break;
            default: WriteCr4(c, v); break;
        }
    }

    /// <summary>
    /// CR0 (SDM vol. 3 §2.5): PG without PE or NW without CD → #GP(0); ET reads as 1; other reserved bits are
    /// ignored. Clearing PE (real mode) is outside this CPU and stops the machine as unsupported.
    /// Changes of PG, WP (or PE) flush the whole TLB.
    /// </summary>
    private static void WriteCr0(X86Cpu c, ref DecodedInsn d, uint v)
    {
        const uint Cd = 0x40000000, Nw = 0x20000000;
        const uint Defined = Cr0Bits.PE | Cr0Bits.MP | Cr0Bits.EM | Cr0Bits.TS | Cr0Bits.ET | Cr0Bits.NE | Cr0Bits.WP
                             | Cr0Bits.AM | Nw | Cd | Cr0Bits.PG;
        if ((v & Cr0Bits.PG) != 0 && (v & Cr0Bits.PE) == 0) { c.RaiseGp(0); return; }
        if ((v & Nw) != 0 && (v & Cd) == 0) { c.RaiseGp(0); return; }
        if ((v & Cr0Bits.PE) == 0) { c.StopUnsupported(ref d); return; }
        v = (v & Defined) | Cr0Bits.ET;
        uint old = c.Cr0;
        c.Cr0 = v;
        if (((old ^ v) & (Cr0Bits.PG | Cr0Bits.WP | Cr0Bits.PE)) != 0) c.FlushTlb();
    }

    /// <summary>CR4: reserved bits → #GP(0); changes of PAE, PGE or PSE flush the whole TLB (SDM vol. 3 §4.10.4.1).</summary>
    private static void WriteCr4(X86Cpu c, uint v)
    {
        if ((v & ~Cr4Valid) != 0) { c.RaiseGp(0); return; }
        uint old = c.Cr4;
        c.Cr4 = v;
        if (((old ^ v) & (Cr4Bits.PAE | Cr4Bits.PGE | Cr4Bits.PSE)) != 0) c.FlushTlb();
    }

    /// <summary>DR4/DR5 alias DR6/DR7 when CR4.DE=0 and raise #UD when DE=1 (SDM vol. 3 §17.2.2); -1 after #UD.</summary>
    private static int DebugIndex(X86Cpu c, int dr)
    {
        if (dr is 4 or 5)
        {
            if ((c.Cr4 & Cr4Bits.DE) != 0) { c.RaiseUd(); return -1; }
            return dr + 2;
        }
        return dr;
    }

    /// <summary>mov r32, drN: CPL≠0 → #GP(0). DR7.GD (#DB on access) is not modelled.</summary>
    private static void MovFromDr(X86Cpu c, ref DecodedInsn d)
    {
        if (!Privileged(c)) return;
        int dr = DebugIndex(c, d.Cc);
        if (dr < 0) return;
        uint v = c.Dr[dr];
        if (dr == 6) v = (v & 0x0000E00Fu) | 0xFFFF0FF0u;
        else if (dr == 7) v = (v & 0xFFFF2BFFu) | 0x400u;
        c.Gpr[d.R0] = v;
    }

    /// <summary>mov drN, r32: DR6/DR7 keep their fixed bits (DR6 bits 4-11,16-31 read 1; DR7 bit 10 reads 1).</summary>
    private static void MovToDr(X86Cpu c, ref DecodedInsn d)
    {
        if (!Privileged(c)) return;
        int dr = DebugIndex(c, d.Cc);
        if (dr < 0) return;
        uint v = c.Gpr[d.R1];
        if (dr == 6) v = (v & 0x0000E00Fu) | 0xFFFF0FF0u;
        else if (dr == 7) v = (v & 0xFFFF2BFFu) | 0x400u;
        c.Dr[dr] = v;
    }

    /// <summary>rdmsr: EFER is the CPU's own; everything else asks the host (false → #GP(0)).</summary>
    private static void Rdmsr(X86Cpu c, ref DecodedInsn d)
    {
        if (!Privileged(c)) return;
        uint msr = c.Ecx;
        ulong v;
        if (msr == MsrEfer) v = c.Efer;
        else if (!c.Host.ReadMsr(c, msr, out v)) { c.RaiseGp(0); return; }
        c.Eax = (uint)v;
        c.Edx = (uint)(v >> 32);
    }

    /// <summary>wrmsr: EFER accepts only NXE (bit 11; others reserved → #GP(0)) and flushes the TLB when it changes.</summary>
    private static void Wrmsr(X86Cpu c, ref DecodedInsn d)
    {
        if (!Privileged(c)) return;
        uint msr = c.Ecx;
        ulong v = ((ulong)c.Edx << 32) | c.Eax;
        if (msr == MsrEfer)
        {
            if ((v & ~EferNxe) != 0) { c.RaiseGp(0); return; }
            if (v != c.Efer) { c.Efer = v; c.FlushTlb(); }
            return;
        }
        if (!c.Host.WriteMsr(c, msr, v)) c.RaiseGp(0);
    }
}
