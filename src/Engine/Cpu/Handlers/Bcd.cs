using Iced.Intel;
using Replayvisor.Engine.Cpu.Decode;

namespace Replayvisor.Engine.Cpu.Handlers;

/// <summary>
/// daa, das, aaa, aas, aam, aad (SDM vol. 2). Undefined flags are deterministic: OF is 0 after
/// daa/das; OF and SF are 0 and ZF/PF follow AL after aaa/aas; OF, AF and CF are 0 after aam/aad.
/// </summary>
internal static unsafe class Bcd
{
    public static delegate*<X86Cpu, ref DecodedInsn, void> Select(ref DecodedInsn d)
    {
        switch (d.Insn.Mnemonic)
        {
            case Mnemonic.Daa: return &Daa;
            case Mnemonic.Das: return &Das;
            case Mnemonic.Aaa: return &Aaa;
            case Mnemonic.Aas: return &Aas;
            case Mnemonic.Aam: return &Aam;
            case Mnemonic.Aad: return &Aad;
            default: return null;
        }
    }

    private static void Daa(X86Cpu c, ref DecodedInsn d)
    {
        uint al = c.Eax & 0xFF, oldAl = al;
        bool oldCf = c.CF, cf = false, af;
        if ((al & 0xF) > 9 || (c.Eflags & Fl.AF) != 0)
        {
            cf = oldCf || al + 6 > 0xFF;
            al = (al + 6) & 0xFF;
            af = true;
        }
        else af = false;
        if (oldAl > 0x99 || oldCf) { al = (al + 0x60) & 0xFF; cf = true; }
        else cf = false;
        c.SetReg(Reg.EAX, 1, al);
        c.SetArith(Fl.Arith, Shift.ResultFlags(al, 1) | (cf ? Fl.CF : 0) | (af ? Fl.AF : 0));
    }

    private static void Das(X86Cpu c, ref DecodedInsn d)
    {
        uint al = c.Eax & 0xFF, oldAl = al;
        bool oldCf = c.CF, cf = false, af;
        if ((al & 0xF) > 9 || (c.Eflags & Fl.AF) != 0)
        {
            cf = oldCf || al < 6;
            al = (al - 6) & 0xFF;
            af = true;
        }
        else af = false;
        // A borrow from the low-digit step is kept (only reachable with non-BCD input, e.g. AL=0 with AF=1):
        // real processors do, as the differential tests against the host show, and so do QEMU and Bochs.
        if (oldAl > 0x99 || oldCf) { al = (al - 0x60) & 0xFF; cf = true; }
        c.SetReg(Reg.EAX, 1, al);
        c.SetArith(Fl.Arith, Shift.ResultFlags(al, 1) | (cf ? Fl.CF : 0) | (af ? Fl.AF : 0));
    }

    private static void Aaa(X86Cpu c, ref DecodedInsn d)
    {
        uint ax = c.Eax & 0xFFFF;
        bool adj = (ax & 0xF) > 9 || (c.Eflags & Fl.AF) != 0;
        if (adj) ax = (ax + 0x106) & 0xFFFF;
        ax &= 0xFF0F;
        c.SetReg(Reg.EAX, 2, ax);
        c.SetArith(Fl.Arith, (Shift.ResultFlags(ax & 0xFF, 1) & (Fl.ZF | Fl.PF)) | (adj ? Fl.AF | Fl.CF : 0));
    }

    private static void Aas(X86Cpu c, ref DecodedInsn d)
    {
        uint ax = c.Eax & 0xFFFF;
        bool adj = (ax & 0xF) > 9 || (c.Eflags & Fl.AF) != 0;
        if (adj)
        {
            ax = (ax - 6) & 0xFFFF;
            ax = (ax - 0x100) & 0xFFFF;
        }
        ax &= 0xFF0F;
        c.SetReg(Reg.EAX, 2, ax);
        c.SetArith(Fl.Arith, (Shift.ResultFlags(ax & 0xFF, 1) & (Fl.ZF | Fl.PF)) | (adj ? Fl.AF | Fl.CF : 0));
    }

    private static void Aam(X86Cpu c, ref DecodedInsn d)
    {
        uint imm = d.Imm & 0xFF;
        if (imm == 0) { c.RaiseFault(Vectors.DE, 0); return; }
        uint al = c.Eax & 0xFF;
        uint nal = al % imm;
        c.SetReg(Reg.EAX, 2, ((al / imm) << 8) | nal);
        c.SetArith(Fl.Arith, Shift.ResultFlags(nal, 1));
    }

    private static void Aad(X86Cpu c, ref DecodedInsn d)
    {
        uint imm = d.Imm & 0xFF;
        uint al = c.Eax & 0xFF, ah = (c.Eax >> 8) & 0xFF;
        uint nal = (al + ah * imm) & 0xFF;
        c.SetReg(Reg.EAX, 2, nal);
        c.SetArith(Fl.Arith, Shift.ResultFlags(nal, 1));
    }
}
