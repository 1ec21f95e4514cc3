using Iced.Intel;
using Replayvisor.Engine.Cpu.Decode;

namespace Replayvisor.Engine.Cpu.Handlers;

/// <summary>lahf, sahf, cbw, cwde, cwd, cdq, xlat, bound, pause (SDM vol. 2).</summary>
internal static unsafe class FlagsConvert
{
    public static delegate*<X86Cpu, ref DecodedInsn, void> Select(ref DecodedInsn d)
    {
        var insn = d.Insn;
        switch (insn.Mnemonic)
        {
            case Mnemonic.Lahf: return &Lahf;
            case Mnemonic.Sahf: return &Sahf;
            case Mnemonic.Cbw: return &Cbw;
            case Mnemonic.Cwde: return &Cwde;
            case Mnemonic.Cwd: return &Cwd;
            case Mnemonic.Cdq: return &Cdq;
            case Mnemonic.Pause: return &Pause;
            case Mnemonic.Xlatb:
                d.MemSeg = InsnDecoder.SegIndex(insn.MemorySegment);
                d.AddrSize = insn.MemoryBase == Register.BX ? (byte)2 : (byte)4;
                return &Xlat;
            case Mnemonic.Bound:
                return d.Op1IsMem ? &Bound : &Misc.Ud;
            default:
                return null;
        }
    }

    /// <summary>AH ← SF:ZF:0:AF:0:PF:1:CF.</summary>
    private static void Lahf(X86Cpu c, ref DecodedInsn d) => c.SetReg(4, 1, (c.Eflags & 0xD5) | 2);

    private static void Sahf(X86Cpu c, ref DecodedInsn d) =>
        c.SetArith(Fl.SF | Fl.ZF | Fl.AF | Fl.PF | Fl.CF, (c.Eax >> 8) & 0xD5);

    private static void Cbw(X86Cpu c, ref DecodedInsn d) => c.SetReg(Reg.EAX, 2, (uint)(sbyte)c.Eax);
    private static void Cwde(X86Cpu c, ref DecodedInsn d) => c.Eax = (uint)(short)c.Eax;
    private static void Cwd(X86Cpu c, ref DecodedInsn d) => c.SetReg(Reg.EDX, 2, (c.Eax & 0x8000) != 0 ? 0xFFFFu : 0);
    private static void Cdq(X86Cpu c, ref DecodedInsn d) => c.Edx = (c.Eax & 0x8000_0000) != 0 ? 0xFFFF_FFFFu : 0;
    private static void Pause(X86Cpu c, ref DecodedInsn d) { }

    /// <summary>AL ← [seg:(E)BX + zero-extended AL].</summary>
    private static void Xlat(X86Cpu c, ref DecodedInsn d)
    {
        uint ea = c.Ebx + (c.Eax & 0xFF);
        if (d.AddrSize == 2) ea &= 0xFFFF;
        uint v = c.Read8(d.MemSeg, ea);
        if (!c.Faulted) c.SetReg(Reg.EAX, 1, v);
    }

    /// <summary>bound r, m: #BR (a fault) when the signed index is below [m] or above [m+size] (SDM vol. 2 BOUND).</summary>
    private static void Bound(X86Cpu c, ref DecodedInsn d)
    {
        int s = d.Size;
        uint ea = c.Ea(ref d);
        uint lo = c.Read(d.MemSeg, ea, s);
        if (c.Faulted) return;
        uint hi = c.Read(d.MemSeg, d.AddrSize == 2 ? (ea + (uint)s) & 0xFFFF : ea + (uint)s, s);
        if (c.Faulted) return;
        int idx, l, h;
        if (s == 4) { idx = (int)c.GetReg(d.R0, 4); l = (int)lo; h = (int)hi; }
        else { idx = (short)c.GetReg(d.R0, 2); l = (short)lo; h = (short)hi; }
        if (idx < l || idx > h) c.RaiseFault(Vectors.BR, 0);
    }
}
