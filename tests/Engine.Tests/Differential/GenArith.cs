using Iced.Intel;
using Replayvisor.Engine.Cpu;
using static Replayvisor.Engine.Tests.Differential.CaseBuilder;

namespace Replayvisor.Engine.Tests.Differential;

/// <summary>Generators for multiply/divide, BCD, shifts and rotates, bit operations.</summary>
public static partial class Gen
{
    public static void MulDiv(CaseBuilder b)
    {
        int k = b.Rng.Next(10);
        if (k < 3) MulOne(b, b.Pick("Mul", "Imul"));
        else if (k < 6) ImulMulti(b);
        else Divide(b, b.Pick("Div", "Idiv"));
        if (k < 6 && b.Chance(40)) b.FlagConsumer();
    }

    /// <summary>mul/imul r/m: AL/AX/EAX times the operand into AX, DX:AX or EDX:EAX.</summary>
    private static void MulOne(CaseBuilder b, string op)
    {
        int size = b.Size();
        b.Fix(0); b.Fix(2);
        b.SetReg(0, size, b.Value(size));
        bool isMem = RmWithValue(b, size, out int reg, out var m);
        b.Emit(Rm(Op(op, $"rm{S(size)}"), b, isMem, reg, m, size));
        b.FlagsWritten(Fl.Arith, SdmUndefined.Flags(Mnemonic.Mul, size));
    }

    /// <summary>imul r, r/m and imul r, r/m, imm8/imm16/imm32.</summary>
    private static void ImulMulti(CaseBuilder b)
    {
        int size = b.Pick(2, 4);
        string s = S(size);
        bool isMem = b.Chance(40);
        MemoryOperand m = isMem ? b.MemWithValue(size, out _, out _) : default;
        int src = isMem ? -1 : b.RegWithValue(size, out _);
        int d = b.RegWithValue(size, out _);
        Instruction insn;
        switch (b.Rng.Next(3))
        {
            case 0:
                insn = isMem ? Instruction.Create(Op("Imul", $"r{s}_rm{s}"), R(d, size), m) : Instruction.Create(Op("Imul", $"r{s}_rm{s}"), R(d, size), R(src, size));
                break;
            case 1:
            {
                int imm = (sbyte)b.Value(1);
                var code = Op("Imul", $"r{s}_rm{s}_imm8");
                insn = isMem ? Instruction.Create(code, R(d, size), m, imm) : Instruction.Create(code, R(d, size), R(src, size), imm);
                break;
            }
            default:
            {
                int imm = size == 2 ? (short)b.Value(2) : (int)b.Value(4);
                var code = Op("Imul", $"r{s}_rm{s}_imm{s}");
                insn = isMem ? Instruction.Create(code, R(d, size), m, imm) : Instruction.Create(code, R(d, size), R(src, size), imm);
                break;
            }
        }
        b.Emit(insn);
        b.FlagsWritten(Fl.Arith, SdmUndefined.Flags(Mnemonic.Imul, size));
    }

    /// <summary>div/idiv with mostly representable quotients, some overflows and some zero divisors (#DE).</summary>
    private static void Divide(CaseBuilder b, string op)
    {
        int size = b.Size();
        int bits = size * 8;
        bool signed = op == "Idiv";
        b.Fix(0); b.Fix(2);
        uint divisor = b.Value(size);
        int mode = b.Rng.Next(100);
        if (mode < 4) divisor = 0;
        else if (divisor == 0) divisor = 1;
        ulong dividend; // 2*bits wide
        ulong wideMask = bits == 32 ? ulong.MaxValue : (1ul << (2 * bits)) - 1;
        if (mode >= 4 && mode < 88)
        {
            if (!signed)
            {
                ulong q = (ulong)b.Value(size);
                ulong r = (ulong)b.Rng.NextInt64(0, divisor);
                dividend = q * divisor + r;
            }
            else
            {
                int sh = 32 - bits;
                long dv = (int)(divisor << sh) >> sh;
                long q = (int)(b.Value(size) << sh) >> sh;
                long abs = Math.Abs(dv);
                long r = b.Rng.NextInt64(0, abs);
                long prod = q * dv;
                if (prod < 0 || (prod == 0 && b.Chance(50))) r = -r;
                dividend = (ulong)(prod + r);
            }
        }
        else dividend = (ulong)b.Rng.NextInt64() ^ ((ulong)b.Rng.NextInt64() << 32);
        dividend &= wideMask;
        if (size == 1) b.SetReg(0, 2, (uint)dividend);
        else { b.SetReg(0, size, (uint)dividend); b.SetReg(2, size, (uint)(dividend >> bits)); }
        bool isMem = b.Chance(40);
        MemoryOperand m = default;
        int reg = -1;
        if (isMem) { int off = b.MemOffset(size); b.Poke(off, divisor, size); m = b.Mem(off); }
        else { reg = b.RegOf(size); b.SetReg(reg, size, divisor); }
        b.Emit(Rm(Op(op, $"rm{S(size)}"), b, isMem, reg, m, size));
        b.FlagsWritten(Fl.Arith, SdmUndefined.Flags(Mnemonic.Div, size));
    }

    public static void Bcd(CaseBuilder b)
    {
        b.Fix(0);
        uint al = b.Chance(50) ? (uint)(b.Rng.Next(0, 16) << 4 | b.Rng.Next(0, 16)) : b.Value(1);
        b.SetReg(0, 1, al);
        b.SetReg(4, 1, b.Value(1)); // AH
        if (b.Chance(50))
        {
            // an add/sub of packed or unpacked BCD digits first, as real code does
            uint other = (uint)(b.Rng.Next(0, 10) << 4 | b.Rng.Next(0, 10));
            b.Emit(Instruction.Create(b.Pick(Code.Add_AL_imm8, Code.Sub_AL_imm8, Code.Adc_AL_imm8, Code.Sbb_AL_imm8), Register.AL, (sbyte)other));
            b.FlagsWritten(Fl.Arith, 0);
        }
        switch (b.Rng.Next(6))
        {
            case 0: b.Emit(Code.Daa); b.FlagsWritten(Fl.Arith, SdmUndefined.Flags(Mnemonic.Daa, 1)); break;
            case 1: b.Emit(Code.Das); b.FlagsWritten(Fl.Arith, SdmUndefined.Flags(Mnemonic.Das, 1)); break;
            case 2: b.Emit(Code.Aaa); b.FlagsWritten(Fl.Arith, SdmUndefined.Flags(Mnemonic.Aaa, 1)); break;
            case 3: b.Emit(Code.Aas); b.FlagsWritten(Fl.Arith, SdmUndefined.Flags(Mnemonic.Aas, 1)); break;
            case 4:
                b.Emit(Instruction.Create(Code.Aam_imm8, b.Chance(60) ? 10 : b.Chance(10) ? 0 : b.Rng.Next(1, 256)));
                b.FlagsWritten(Fl.Arith, SdmUndefined.Flags(Mnemonic.Aam, 1));
                break;
            default:
                b.Emit(Instruction.Create(Code.Aad_imm8, b.Chance(60) ? 10 : b.Rng.Next(0, 256)));
                b.FlagsWritten(Fl.Arith, SdmUndefined.Flags(Mnemonic.Aad, 1));
                break;
        }
    }

    private static readonly string[] ShiftOps = ["Rol", "Ror", "Rcl", "Rcr", "Shl", "Shr", "Sar", "Sal"];

    /// <summary>A shift count: 0, 1, around the operand width, 31/32/33, or random (the CPU masks it to 5 bits).</summary>
    private static int ShiftCount(CaseBuilder b, int bits) =>
        b.Rng.Next(8) switch
        {
            0 => 0,
            1 => 1,
            2 => bits - 1 + b.Rng.Next(0, 3),
            3 => b.Pick(31, 32, 33, 63, 64, 255),
            4 => b.Pick(8, 9, 16, 17),
            _ => b.Rng.Next(0, 256),
        };

    public static void Shift(CaseBuilder b)
    {
        if (b.Chance(25)) { ShiftDouble(b); return; }
        string op = b.Pick(ShiftOps);
        int size = b.Size();
        string s = S(size);
        int count = ShiftCount(b, size * 8);
        int form = b.Rng.Next(3); // 0: by 1, 1: by CL, 2: by imm8
        if (form == 0) count = 1;
        if (form == 1) { b.Fix(1); b.SetReg(1, 1, (uint)count); }
        bool isMem = RmWithValue(b, size, out int reg, out var m);
        string suffix = form switch { 0 => "1", 1 => "CL", _ => "imm8" };
        var code = Op(op, $"rm{s}_{suffix}");
        Instruction insn;
        if (form == 2) insn = isMem ? Instruction.Create(code, m, count) : Instruction.Create(code, R(reg, size), count);
        else if (form == 1) insn = isMem ? Instruction.Create(code, m, Register.CL) : Instruction.Create(code, R(reg, size), Register.CL);
        else insn = isMem ? Instruction.Create(code, m, 1) : Instruction.Create(code, R(reg, size), 1);
        b.Emit(insn);
        var mn = Enum.Parse<Mnemonic>(op);
        if ((count & 0x1F) != 0)
        {
            uint written = mn is Mnemonic.Rol or Mnemonic.Ror or Mnemonic.Rcl or Mnemonic.Rcr ? Fl.CF | Fl.OF : Fl.Arith;
            b.FlagsWritten(written, SdmUndefined.Flags(mn, size, count));
        }
        if (b.Chance(40)) b.FlagConsumer();
    }

    private static void ShiftDouble(CaseBuilder b)
    {
        string op = b.Pick("Shld", "Shrd");
        int size = b.Pick(2, 4);
        string s = S(size);
        int count = ShiftCount(b, size * 8);
        bool cl = b.Chance(50);
        if (cl) { b.Fix(1); b.SetReg(1, 1, (uint)count); }
        bool undefinedResult = SdmUndefined.ShiftDoubleResultUndefined(size, count);
        bool isMem = !undefinedResult && b.Chance(40);
        MemoryOperand m = isMem ? b.MemWithValue(size, out _, out _) : default;
        int dst = isMem ? -1 : b.RegWithValue(size, out _);
        int src = b.RegWithValue(size, out _);
        var code = Op(op, $"rm{s}_r{s}_{(cl ? "CL" : "imm8")}");
        Instruction insn = (isMem, cl) switch
        {
            (true, true) => Instruction.Create(code, m, R(src, size), Register.CL),
            (true, false) => Instruction.Create(code, m, R(src, size), count),
            (false, true) => Instruction.Create(code, R(dst, size), R(src, size), Register.CL),
            _ => Instruction.Create(code, R(dst, size), R(src, size), count),
        };
        b.Emit(insn);
        if (undefinedResult) b.RegUndefined(dst, size);
        if ((count & 0x1F) != 0) b.FlagsWritten(Fl.Arith, SdmUndefined.Flags(Enum.Parse<Mnemonic>(op), size, count));
    }

    public static void BitOps(CaseBuilder b)
    {
        if (b.Chance(30)) { BitScan(b); return; }
        string op = b.Pick("Bt", "Bts", "Btr", "Btc");
        int size = b.Pick(2, 4);
        string s = S(size);
        switch (b.Rng.Next(4))
        {
            case 0: // register, register offset (taken modulo the width)
            {
                int d = b.RegWithValue(size, out _), o = b.RegWithValue(size, out _);
                b.Emit(Instruction.Create(Op(op, $"rm{s}_r{s}"), R(d, size), R(o, size)));
                break;
            }
            case 1: // memory, register offset: a signed bit string offset reaching far from the operand
            {
                int baseOff = 0x800;
                for (int i = -8; i < 8; i++) b.Poke(baseOff + i * 4, b.Value(4), 4);
                var m = b.Mem(baseOff);
                int o = b.RegOf(size);
                int bitOff = b.Chance(50) ? b.Rng.Next(-64, 64) : b.Rng.Next(-0x800 * 8, 0x600 * 8);
                b.SetReg(o, size, (uint)bitOff);
                b.Emit(Instruction.Create(Op(op, $"rm{s}_r{s}"), m, R(o, size)));
                break;
            }
            default: // register or memory, immediate offset (taken modulo the width)
            {
                bool isMem = RmWithValue(b, size, out int reg, out var m);
                int imm = b.Rng.Next(0, 256);
                var code = Op(op, $"rm{s}_imm8");
                b.Emit(isMem ? Instruction.Create(code, m, imm) : Instruction.Create(code, R(reg, size), imm));
                break;
            }
        }
        b.FlagsWritten(Fl.CF | Fl.OF | Fl.SF | Fl.AF | Fl.PF, SdmUndefined.Flags(Mnemonic.Bt, size));
        if (b.Chance(40)) b.FlagConsumer();
    }

    private static void BitScan(CaseBuilder b)
    {
        string op = b.Pick("Bsf", "Bsr");
        int size = b.Pick(2, 4);
        string s = S(size);
        uint v = b.Chance(15) ? 0 : b.Value(size);
        bool isMem = b.Chance(40);
        MemoryOperand m = default;
        int src = -1;
        if (isMem) { int off = b.MemOffset(size); b.Poke(off, v, size); m = b.Mem(off); }
        else { src = b.RegOf(size); b.SetReg(src, size, v); }
        int d = b.RegWithValue(size, out _);
        if (!isMem && d == src) v = b.GetReg(src, size);
        var code = Op(op, $"r{s}_rm{s}");
        b.Emit(isMem ? Instruction.Create(code, R(d, size), m) : Instruction.Create(code, R(d, size), R(src, size)));
        if (SdmUndefined.BitScanResultUndefined(v)) b.RegUndefined(d, size);
        b.FlagsWritten(Fl.Arith, SdmUndefined.Flags(Mnemonic.Bsf, size));
        if (b.Chance(40)) b.FlagConsumer();
    }
}
