using Iced.Intel;
using Replayvisor.Engine.Cpu.Decode;

namespace Replayvisor.Engine.Cpu.Handlers;

/// <summary>
/// mul, imul (one, two and three operands), div, idiv (SDM vol. 2 MUL, IMUL, DIV, IDIV).
/// <para>Undefined flags are deterministic: after mul/imul SF, ZF and PF follow the low half of the
/// product (the truncated destination for the 2/3-operand forms) and AF is 0; div and idiv leave
/// all flags unchanged.</para>
/// </summary>
internal static unsafe class MulDiv
{
    public static delegate*<X86Cpu, ref DecodedInsn, void> Select(ref DecodedInsn d)
    {
        var insn = d.Insn;
        switch (insn.Mnemonic)
        {
            case Mnemonic.Mul: return insn.OpCount == 1 ? &Mul : null;
            case Mnemonic.Div: return insn.OpCount == 1 ? &Div : null;
            case Mnemonic.Idiv: return insn.OpCount == 1 ? &Idiv : null;
            case Mnemonic.Imul:
                if (insn.OpCount == 1) return &Imul1;
                if (insn.OpCount == 2) return &Imul2;
                if (insn.OpCount == 3) return &Imul3;
                return null;
            default:
                return null;
        }
    }

    private static uint Source(X86Cpu c, ref DecodedInsn d) => c.ReadOp0(ref d);

    private static void Mul(X86Cpu c, ref DecodedInsn d)
    {
        int s = d.Size;
        uint src = Source(c, ref d);
        if (c.Faulted) return;
        bool high;
        uint low;
        switch (s)
        {
            case 1:
            {
                uint p = (c.Eax & 0xFF) * src;
                c.SetReg(Reg.EAX, 2, p);
                high = (p & 0xFF00) != 0;
                low = p & 0xFF;
                break;
            }
            case 2:
            {
                uint p = (c.Eax & 0xFFFF) * src;
                c.SetReg(Reg.EAX, 2, p);
                c.SetReg(Reg.EDX, 2, p >> 16);
                high = (p >> 16) != 0;
                low = p & 0xFFFF;
                break;
            }
            default:
            {
                ulong p = (ulong)c.Eax * src;
                c.Eax = (uint)p;
                c.Edx = (uint)(p >> 32);
                high = (p >> 32) != 0;
                low = (uint)p;
                break;
            }
        }
        c.SetArith(Fl.Arith, Shift.ResultFlags(low, s) | (high ? Fl.CF | Fl.OF : 0));
    }

    private static int Sext(uint v, int size) => size == 4 ? (int)v : size == 2 ? (short)v : (sbyte)v;

    private static void Imul1(X86Cpu c, ref DecodedInsn d)
    {
        int s = d.Size;
        uint src = Source(c, ref d);
        if (c.Faulted) return;
        bool ovf;
        uint low;
        switch (s)
        {
            case 1:
            {
                int p = (sbyte)c.Eax * (sbyte)src;
                c.SetReg(Reg.EAX, 2, (uint)p);
                ovf = p != (sbyte)p;
                low = (uint)p & 0xFF;
                break;
            }
            case 2:
            {
                int p = (short)c.Eax * (short)src;
                c.SetReg(Reg.EAX, 2, (uint)p);
                c.SetReg(Reg.EDX, 2, (uint)p >> 16);
                ovf = p != (short)p;
                low = (uint)p & 0xFFFF;
                break;
            }
            default:
            {
                long p = (long)(int)c.Eax * (int)src;
                c.Eax = (uint)p;
                c.Edx = (uint)((ulong)p >> 32);
                ovf = p != (int)p;
                low = (uint)p;
                break;
            }
        }
        c.SetArith(Fl.Arith, Shift.ResultFlags(low, s) | (ovf ? Fl.CF | Fl.OF : 0));
    }

    private static void ImulCommon(X86Cpu c, ref DecodedInsn d, uint a, uint b)
    {
        int s = d.Size;
        long p = (long)Sext(a, s) * Sext(b, s);
        uint r = (uint)p & X86Cpu.SizeMask(s);
        bool ovf = p != Sext(r, s);
        c.SetReg(d.R0, s, r);
        c.SetArith(Fl.Arith, Shift.ResultFlags(r, s) | (ovf ? Fl.CF | Fl.OF : 0));
    }

    private static void Imul2(X86Cpu c, ref DecodedInsn d)
    {
        uint b = c.ReadOp1(ref d);
        if (c.Faulted) return;
        ImulCommon(c, ref d, c.GetReg(d.R0, d.Size), b);
    }

    private static void Imul3(X86Cpu c, ref DecodedInsn d)
    {
        uint b = c.ReadOp1(ref d);
        if (c.Faulted) return;
        ImulCommon(c, ref d, b, d.Imm2);
    }

    private static void Div(X86Cpu c, ref DecodedInsn d)
    {
        int s = d.Size;
        uint src = Source(c, ref d);
        if (c.Faulted) return;
        if (src == 0) { c.RaiseFault(Vectors.DE, 0); return; }
        switch (s)
        {
            case 1:
            {
                uint n = c.Eax & 0xFFFF;
                uint q = n / src;
                if (q > 0xFF) { c.RaiseFault(Vectors.DE, 0); return; }
                c.SetReg(Reg.EAX, 2, ((n % src) << 8) | q);
                break;
            }
            case 2:
            {
                uint n = ((c.Edx & 0xFFFF) << 16) | (c.Eax & 0xFFFF);
                uint q = n / src;
                if (q > 0xFFFF) { c.RaiseFault(Vectors.DE, 0); return; }
                c.SetReg(Reg.EAX, 2, q);
                c.SetReg(Reg.EDX, 2, n % src);
                break;
            }
            default:
            {
                ulong n = ((ulong)c.Edx << 32) | c.Eax;
                ulong q = n / src;
                if (q > 0xFFFF_FFFF) { c.RaiseFault(Vectors.DE, 0); return; }
                c.Eax = (uint)q;
                c.Edx = (uint)(n % src);
                break;
            }
        }
    }

    private static void Idiv(X86Cpu c, ref DecodedInsn d)
    {
        int s = d.Size;
        uint raw = Source(c, ref d);
        if (c.Faulted) return;
        long divisor = Sext(raw, s);
        if (divisor == 0) { c.RaiseFault(Vectors.DE, 0); return; }
        long n = s switch
        {
            1 => (short)c.Eax,
            2 => (int)(((c.Edx & 0xFFFF) << 16) | (c.Eax & 0xFFFF)),
            _ => (long)(((ulong)c.Edx << 32) | c.Eax),
        };
        if (n == long.MinValue && divisor == -1) { c.RaiseFault(Vectors.DE, 0); return; }
        long q = n / divisor, r = n % divisor;
        long min = -(1L << (s * 8 - 1)), max = (1L << (s * 8 - 1)) - 1;
        if (q < min || q > max) { c.RaiseFault(Vectors.DE, 0); return; }
        switch (s)
        {
            case 1: c.SetReg(Reg.EAX, 2, (((uint)r & 0xFF) << 8) | ((uint)q & 0xFF)); break;
            case 2: c.SetReg(Reg.EAX, 2, (uint)q); c.SetReg(Reg.EDX, 2, (uint)r); break;
            default: c.Eax = (uint)q; c.Edx = (uint)r; break;
        }
    }
}
