using Iced.Intel;
using Replayvisor.Engine.Cpu.Decode;

namespace Replayvisor.Engine.Cpu.Handlers;

/// <summary>
/// shl/sal, shr, sar, rol, ror, rcl, rcr, shld, shrd (SDM vol. 2 SAL/SAR/SHL/SHR, RCL/RCR/ROL/ROR,
/// SHLD, SHRD). The count is masked to 5 bits; a masked count of 0 changes nothing (not even flags).
/// <para>Undefined results are deterministic: AF is 0 after every shift; OF for counts other than 1 uses
/// the count-1 formula (shl: MSB(result) xor CF; shr: MSB(original); sar: 0; rotates: as for count 1
/// computed on the final result); CF after shl/shr by more than the operand width is 0; a 16-bit
/// shld/shrd with a count above 16 shifts the 48-bit value dest:src:dest (as P6-family processors do).</para>
/// </summary>
internal static unsafe class Shift
{
    private const byte Rol = 0, Ror = 1, Rcl = 2, Rcr = 3, Shl = 4, Shr = 5, Sar = 7;

    public static delegate*<X86Cpu, ref DecodedInsn, void> Select(ref DecodedInsn d)
    {
        var insn = d.Insn;
        switch (insn.Mnemonic)
        {
            case Mnemonic.Rol: d.Cc = Rol; break;
            case Mnemonic.Ror: d.Cc = Ror; break;
            case Mnemonic.Rcl: d.Cc = Rcl; break;
            case Mnemonic.Rcr: d.Cc = Rcr; break;
            case Mnemonic.Shl: case Mnemonic.Sal: d.Cc = Shl; break;
            case Mnemonic.Shr: d.Cc = Shr; break;
            case Mnemonic.Sar: d.Cc = Sar; break;
            case Mnemonic.Shld:
            case Mnemonic.Shrd:
                if (insn.OpCount != 3) return null;
                d.Cc = (byte)(insn.Mnemonic == Mnemonic.Shld ? 0 : 1);
                // Count from CL (Rep unused by these opcodes, so mark the CL form in Imm2's top bit).
                if (insn.Op2Kind == OpKind.Register) d.Imm2 = 0x8000_0000;
                return &DoubleShift;
            default:
                return null;
        }
        if (insn.OpCount != 2) return null;
        if (insn.Op1Kind == OpKind.Register) d.Imm = 0x8000_0000; // count in CL
        return &ShiftRotate;
    }

    private static void ShiftRotate(X86Cpu c, ref DecodedInsn d)
    {
        int size = d.Size;
        int count = (int)(((d.Imm & 0x8000_0000) != 0 ? c.Ecx : d.Imm) & 0x1F);
        uint ea = 0;
        uint a;
        if (d.Op0IsMem)
        {
            ea = c.Ea(ref d);
            a = count != 0 ? c.ReadForWrite(d.MemSeg, ea, size) : c.Read(d.MemSeg, ea, size);
            if (c.Faulted) return;
        }
        else a = c.GetReg(d.R0, size);
        if (count == 0) return;
        uint flags;
        uint mask;
        uint r = Compute(c, d.Cc, a, count, size, out flags, out mask);
        if (d.Op0IsMem)
        {
            c.Write(d.MemSeg, ea, size, r);
            if (c.Faulted) return;
        }
        else c.SetReg(d.R0, size, r);
        c.SetArith(mask, flags);
    }

    /// <summary>Computes a shift or rotate by a non-zero masked count; returns the result, the flag values and which flags change.</summary>
    internal static uint Compute(X86Cpu c, int op, uint a, int count, int size, out uint flags, out uint fmask)
    {
        int bits = size * 8;
        uint m = X86Cpu.SizeMask(size), sign = X86Cpu.SignBit(size);
        a &= m;
        uint r;
        bool cf, of;
        switch (op)
        {
            case Rol:
            {
                int t = count & (bits - 1);
                r = t == 0 ? a : ((a << t) | (a >> (bits - t))) & m;
                cf = (r & 1) != 0;
                of = ((r & sign) != 0) ^ cf;
                fmask = Fl.CF | Fl.OF;
                flags = (cf ? Fl.CF : 0) | (of ? Fl.OF : 0);
                return r;
            }
            case Ror:
            {
                int t = count & (bits - 1);
                r = t == 0 ? a : ((a >> t) | (a << (bits - t))) & m;
                cf = (r & sign) != 0;
                of = cf ^ ((r & (sign >> 1)) != 0);
                fmask = Fl.CF | Fl.OF;
                flags = (cf ? Fl.CF : 0) | (of ? Fl.OF : 0);
                return r;
            }
            case Rcl:
            case Rcr:
            {
                int t = bits == 32 ? count : count % (bits + 1);
                ulong cin = c.CF ? 1ul : 0ul;
                // (bits+1)-bit value: carry above the operand.
                ulong v = ((ulong)cin << bits) | a;
                ulong vm = (1ul << (bits + 1)) - 1;
                if (t != 0)
                {
                    int w = bits + 1;
                    v = op == Rcl ? ((v << t) | (v >> (w - t))) & vm : ((v >> t) | (v << (w - t))) & vm;
                }
                r = (uint)v & m;
                cf = ((v >> bits) & 1) != 0;
                of = op == Rcl ? ((r & sign) != 0) ^ cf : ((r & sign) != 0) ^ ((r & (sign >> 1)) != 0);
                fmask = Fl.CF | Fl.OF;
                flags = (cf ? Fl.CF : 0) | (of ? Fl.OF : 0);
                return r;
            }
            case Shl:
            {
                ulong w = (ulong)a << count;
                r = (uint)w & m;
                cf = ((w >> bits) & 1) != 0;
                of = ((r & sign) != 0) ^ cf;
                break;
            }
            case Shr:
            {
                cf = ((a >> (count - 1)) & 1) != 0;
                r = a >> count;
                of = (a & sign) != 0;
                break;
            }
            default: // Sar
            {
                int sh = 32 - bits;
                int sa = (int)(a << sh) >> sh;
                cf = ((sa >> (count - 1)) & 1) != 0;
                r = (uint)(sa >> count) & m;
                of = false;
                break;
            }
        }
        fmask = Fl.Arith;
        flags = ResultFlags(r, size) | (cf ? Fl.CF : 0) | (of ? Fl.OF : 0);
        return r;
    }

    /// <summary>SF, ZF and PF of a result.</summary>
    internal static uint ResultFlags(uint r, int size)
    {
        r &= X86Cpu.SizeMask(size);
        uint f = (System.Numerics.BitOperations.PopCount(r & 0xFF) & 1) == 0 ? Fl.PF : 0;
        if (r == 0) f |= Fl.ZF;
        if ((r & X86Cpu.SignBit(size)) != 0) f |= Fl.SF;
        return f;
    }

    private static void DoubleShift(X86Cpu c, ref DecodedInsn d)
    {
        int size = d.Size;
        int count = (int)(((d.Imm2 & 0x8000_0000) != 0 ? c.Ecx : d.Imm2) & 0x1F);
        uint ea = 0;
        uint a;
        if (d.Op0IsMem)
        {
            ea = c.Ea(ref d);
            a = count != 0 ? c.ReadForWrite(d.MemSeg, ea, size) : c.Read(d.MemSeg, ea, size);
            if (c.Faulted) return;
        }
        else a = c.GetReg(d.R0, size);
        if (count == 0) return;
        uint b = c.GetReg(d.R1, size);
        uint r;
        bool cf, of;
        if (size == 4)
        {
            if (d.Cc == 0)
            {
                r = (a << count) | (b >> (32 - count));
                cf = ((a >> (32 - count)) & 1) != 0;
                of = ((r >> 31) != 0) ^ cf;
            }
            else
            {
                r = (a >> count) | (b << (32 - count));
                cf = ((a >> (count - 1)) & 1) != 0;
                of = ((r >> 31) ^ ((r >> 30) & 1)) != 0;
            }
        }
        else
        {
            // 48-bit dest:src:dest, so counts 17-31 are deterministic.
            ulong v = ((ulong)a << 32) | ((ulong)b << 16) | a;
            if (d.Cc == 0)
            {
                r = (uint)((v << count) >> 32) & 0xFFFF;
                cf = ((v >> (48 - count)) & 1) != 0;
                of = ((r >> 15) != 0) ^ cf;
            }
            else
            {
                r = (uint)(v >> count) & 0xFFFF;
                cf = ((v >> (count - 1)) & 1) != 0;
                of = (((r >> 15) ^ (r >> 14)) & 1) != 0;
            }
        }
        if (d.Op0IsMem)
        {
            c.Write(d.MemSeg, ea, size, r);
            if (c.Faulted) return;
        }
        else c.SetReg(d.R0, size, r);
        c.SetArith(Fl.Arith, ResultFlags(r, size) | (cf ? Fl.CF : 0) | (of ? Fl.OF : 0));
    }
}
