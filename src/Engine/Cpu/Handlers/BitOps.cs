using System.Numerics;
using Iced.Intel;
using Replayvisor.Engine.Cpu.Decode;

namespace Replayvisor.Engine.Cpu.Handlers;

/// <summary>
/// bt, bts, btr, btc, bsf, bsr, bswap (SDM vol. 2). Undefined flags are deterministic: bt* change
/// only CF; bsf/bsr change only ZF. bswap of a 16-bit register (undefined) clears it, as Intel and
/// AMD processors do.
/// </summary>
internal static unsafe class BitOps
{
    private const byte OpBt = 0, OpBts = 1, OpBtr = 2, OpBtc = 3;

    public static delegate*<X86Cpu, ref DecodedInsn, void> Select(ref DecodedInsn d)
    {
        var insn = d.Insn;
        switch (insn.Mnemonic)
        {
            case Mnemonic.Bt: d.Cc = OpBt; break;
            case Mnemonic.Bts: d.Cc = OpBts; break;
            case Mnemonic.Btr: d.Cc = OpBtr; break;
            case Mnemonic.Btc: d.Cc = OpBtc; break;
            // F3 0F BC/BD decode as tzcnt/lzcnt, but a P6-family CPU (no BMI1/LZCNT in CPUID)
            // ignores the F3 prefix and executes bsf/bsr, which is what compilers rely on.
            case Mnemonic.Bsf: case Mnemonic.Tzcnt: return &Bsf;
            case Mnemonic.Bsr: case Mnemonic.Lzcnt: return &Bsr;
            case Mnemonic.Bswap: return &Bswap;
            default: return null;
        }
        if (insn.OpCount != 2) return null;
        if (d.Lock != 0 && (!d.Op0IsMem || d.Cc == OpBt)) return &Misc.Ud;
        bool reg = insn.Op1Kind == OpKind.Register;
        if (d.Op0IsMem) return reg ? &BitMemReg : &BitMemImm;
        return reg ? &BitRegReg : &BitRegImm;
    }

    private static uint Apply(int op, uint v, uint bit) => op switch
    {
        OpBts => v | bit,
        OpBtr => v & ~bit,
        OpBtc => v ^ bit,
        _ => v,
    };

    private static void BitRegReg(X86Cpu c, ref DecodedInsn d) => BitReg(c, ref d, c.GetReg(d.R1, d.Size));
    private static void BitRegImm(X86Cpu c, ref DecodedInsn d) => BitReg(c, ref d, d.Imm);

    private static void BitReg(X86Cpu c, ref DecodedInsn d, uint offset)
    {
        int s = d.Size;
        uint bit = 1u << (int)(offset & (uint)(s * 8 - 1));
        uint v = c.GetReg(d.R0, s);
        if (d.Cc != OpBt) c.SetReg(d.R0, s, Apply(d.Cc, v, bit));
        c.SetArith(Fl.CF, (v & bit) != 0 ? Fl.CF : 0);
    }

    private static void BitMemImm(X86Cpu c, ref DecodedInsn d)
    {
        int s = d.Size;
        BitMem(c, ref d, c.Ea(ref d), 1u << (int)(d.Imm & (uint)(s * 8 - 1)));
    }

    /// <summary>Register bit offset: signed, selecting an operand-sized unit relative to the address (SDM vol. 2 BT, "bit base").</summary>
    private static void BitMemReg(X86Cpu c, ref DecodedInsn d)
    {
        int s = d.Size;
        uint ea = c.Ea(ref d);
        uint bit;
        if (s == 4)
        {
            int off = (int)c.GetReg(d.R1, 4);
            ea += (uint)((off >> 5) * 4);
            bit = 1u << (off & 31);
        }
        else
        {
            int off = (short)c.GetReg(d.R1, 2);
            ea += (uint)((off >> 4) * 2);
            bit = 1u << (off & 15);
        }
        if (d.AddrSize == 2) ea &= 0xFFFF;
        BitMem(c, ref d, ea, bit);
    }

    private static void BitMem(X86Cpu c, ref DecodedInsn d, uint ea, uint bit)
    {
        int s = d.Size;
        uint v = d.Cc != OpBt ? c.ReadForWrite(d.MemSeg, ea, s) : c.Read(d.MemSeg, ea, s);
        if (c.Faulted) return;
        if (d.Cc != OpBt)
        {
            c.Write(d.MemSeg, ea, s, Apply(d.Cc, v, bit));
            if (c.Faulted) return;
        }
        c.SetArith(Fl.CF, (v & bit) != 0 ? Fl.CF : 0);
    }

    private static void Bsf(X86Cpu c, ref DecodedInsn d)
    {
        uint v = c.ReadOp1(ref d);
        if (c.Faulted) return;
        if (v == 0) { c.SetArith(Fl.ZF, Fl.ZF); return; }
        c.SetReg(d.R0, d.Size, (uint)BitOperations.TrailingZeroCount(v));
        c.SetArith(Fl.ZF, 0);
    }

    private static void Bsr(X86Cpu c, ref DecodedInsn d)
    {
        uint v = c.ReadOp1(ref d);
        if (c.Faulted) return;
        if (v == 0) { c.SetArith(Fl.ZF, Fl.ZF); return; }
        c.SetReg(d.R0, d.Size, (uint)(31 - BitOperations.LeadingZeroCount(v)));
        c.SetArith(Fl.ZF, 0);
    }

    private static void Bswap(X86Cpu c, ref DecodedInsn d)
    {
        if (d.Size == 2) { c.SetReg(d.R0, 2, 0); return; }
        c.Gpr[d.R0] = BinaryPrimitivesReverse(c.Gpr[d.R0]);
    }

    private static uint BinaryPrimitivesReverse(uint v) => System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(v);
}
