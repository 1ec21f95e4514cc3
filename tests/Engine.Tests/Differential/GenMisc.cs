using Iced.Intel;
using Replayvisor.Engine.Cpu;
using static Replayvisor.Engine.Tests.Differential.CaseBuilder;

namespace Replayvisor.Engine.Tests.Differential;

/// <summary>Generators for strings, atomics, stack frames, flag transfer, conversions and the rest.</summary>
public static partial class Gen
{
    public static void String(CaseBuilder b)
    {
        int size = b.Size();
        bool down = b.Chance(40);
        b.Eflags = down ? b.Eflags | Fl.DF : b.Eflags & ~Fl.DF;
        string kind = b.Pick("movs", "cmps", "scas", "lods", "stos");
        bool compares = kind is "cmps" or "scas";
        RepPrefixKind rep = b.Rng.Next(3) switch
        {
            0 => RepPrefixKind.None,
            1 => RepPrefixKind.Repe,
            _ => compares ? RepPrefixKind.Repne : RepPrefixKind.Repe,
        };
        int count = b.Rng.Next(0, 9);
        for (int r = 0; r < 8; r++) if (r is 0 or 1 or 6 or 7) b.Fix(r);
        b.Regs[1] = rep == RepPrefixKind.None ? b.Value(4) : (uint)count;
        int span = 16 * 4;
        int srcOff = down ? b.Rng.Next(0x400, 0x700) : b.Rng.Next(0x100, 0x380);
        int dstOff = down ? b.Rng.Next(0xA00, 0xE00) : b.Rng.Next(0x800, 0x900);
        if (b.Chance(10)) dstOff = srcOff + b.Rng.Next(-8, 9); // overlapping moves
        b.Regs[6] = DiffCase.DataBase + (uint)srcOff;
        b.Regs[7] = DiffCase.DataBase + (uint)dstOff;
        b.SetReg(0, 4, b.Value(4));
        if (compares)
        {
            // Make the two strings (or the string and AL/AX/EAX) agree for a while, then maybe differ.
            var src = new byte[span * 2];
            b.Rng.NextBytes(src);
            var dst = (byte[])src.Clone();
            int eqUnits = b.Rng.Next(0, count + 2);
            for (int u = 0; u < 16; u++)
            {
                int pos = span + (down ? -u * size : u * size); // unit u of the string, relative to off - span
                bool diff = u >= eqUnits && b.Chance(60);
                if (kind == "scas")
                    for (int i = 0; i < size; i++) dst[pos + i] = (byte)((b.Regs[0] >> (8 * i)) ^ (diff ? 0x5Au : 0u));
                else if (diff) dst[pos] ^= (byte)b.Rng.Next(1, 256);
            }
            if (kind == "cmps") b.PokeBytes(srcOff - span, src);
            b.PokeBytes(dstOff - span, dst);
        }
        Instruction insn = (kind, size) switch
        {
            ("movs", 1) => Instruction.CreateMovsb(32, Register.None, rep),
            ("movs", 2) => Instruction.CreateMovsw(32, Register.None, rep),
            ("movs", _) => Instruction.CreateMovsd(32, Register.None, rep),
            ("cmps", 1) => Instruction.CreateCmpsb(32, Register.None, rep),
            ("cmps", 2) => Instruction.CreateCmpsw(32, Register.None, rep),
            ("cmps", _) => Instruction.CreateCmpsd(32, Register.None, rep),
            ("scas", 1) => Instruction.CreateScasb(32, rep),
            ("scas", 2) => Instruction.CreateScasw(32, rep),
            ("scas", _) => Instruction.CreateScasd(32, rep),
            ("lods", 1) => Instruction.CreateLodsb(32, Register.None, rep),
            ("lods", 2) => Instruction.CreateLodsw(32, Register.None, rep),
            ("lods", _) => Instruction.CreateLodsd(32, Register.None, rep),
            ("stos", 1) => Instruction.CreateStosb(32, rep),
            ("stos", 2) => Instruction.CreateStosw(32, rep),
            _ => Instruction.CreateStosd(32, rep),
        };
        b.Emit(insn);
        if (compares && (rep == RepPrefixKind.None || count > 0)) b.FlagsWritten(Fl.Arith, 0);
        if (b.Chance(40)) b.FlagConsumer();
    }

    public static void Atomic(CaseBuilder b)
    {
        switch (b.Rng.Next(4))
        {
            case 0: // cmpxchg r/m, r: equal (store) or not (load into the accumulator)
            {
                int size = b.Size();
                b.Fix(0);
                bool isMem = RmWithValue(b, size, out int reg, out var m);
                int src = b.RegWithValue(size, out _);
                uint acc = b.Value(size);
                if (b.Chance(50))
                {
                    if (isMem) { int off = b.MemOffset(size); b.Poke(off, acc, size); m = b.Mem(off); }
                    else b.SetReg(reg, size, acc);
                }
                b.SetReg(0, size, acc);
                var insn = isMem ? Instruction.Create(Op("Cmpxchg", $"rm{S(size)}_r{S(size)}"), m, R(src, size))
                                 : Instruction.Create(Op("Cmpxchg", $"rm{S(size)}_r{S(size)}"), R(reg, size), R(src, size));
                if (isMem && b.Chance(50)) insn.HasLockPrefix = true;
                b.Emit(insn);
                b.FlagsWritten(Fl.Arith, 0);
                break;
            }
            case 1: // cmpxchg8b m64
            {
                for (int r = 0; r < 4; r++) b.Fix(r);
                int off = b.MemOffset(8);
                ulong cur = ((ulong)b.Value(4) << 32) | b.Value(4);
                b.Poke(off, (uint)cur, 4); b.Poke(off + 4, (uint)(cur >> 32), 4);
                ulong expect = b.Chance(50) ? cur : cur ^ (1ul << b.Rng.Next(64));
                b.Regs[0] = (uint)expect; b.Regs[2] = (uint)(expect >> 32);
                var insn = Instruction.Create(Code.Cmpxchg8b_m64, b.Mem(off));
                if (b.Chance(50)) insn.HasLockPrefix = true;
                b.Emit(insn);
                b.FlagsWritten(Fl.ZF, 0);
                break;
            }
            case 2: // xadd
            {
                int size = b.Size();
                bool isMem = RmWithValue(b, size, out int reg, out var m);
                int src = b.RegWithValue(size, out _);
                var insn = isMem ? Instruction.Create(Op("Xadd", $"rm{S(size)}_r{S(size)}"), m, R(src, size))
                                 : Instruction.Create(Op("Xadd", $"rm{S(size)}_r{S(size)}"), R(reg, size), R(src, size));
                if (isMem && b.Chance(50)) insn.HasLockPrefix = true;
                b.Emit(insn);
                b.FlagsWritten(Fl.Arith, 0);
                break;
            }
            default: // bswap r32 (the 16-bit form is undefined and not generated)
                b.Emit(Instruction.Create(Code.Bswap_r32, R(b.RegWithValue(4, out _), 4)));
                break;
        }
        if (b.Chance(40)) b.FlagConsumer();
    }

    public static void EnterLeave(CaseBuilder b)
    {
        b.Fix(Reg.EBP);
        // EBP points into the stack page so nested enter can copy frame pointers from it.
        b.Regs[Reg.EBP] = DiffCase.StackTop + 0x20 + 4 * (uint)b.Rng.Next(0, 8);
        bool word = b.Chance(25);
        if (b.Chance(70))
        {
            int level = b.Chance(80) ? b.Rng.Next(0, 4) : b.Pick(31, 32, 33, 255);
            int alloc = b.Rng.Next(0, 0x100);
            b.Emit(Instruction.Create(word ? Code.Enterw_imm16_imm8 : Code.Enterd_imm16_imm8, alloc, level));
            if (b.Chance(50)) b.Emit(Instruction.Create(Code.Mov_rm32_imm32, new MemoryOperand(Register.EBP, -4, 1), (int)b.Value(4)));
            if (b.Chance(60)) b.Emit(word ? Code.Leavew : Code.Leaved);
        }
        else b.Emit(word ? Code.Leavew : Code.Leaved);
    }

    public static void PushaPopa(CaseBuilder b)
    {
        bool word = b.Chance(30);
        if (b.Chance(60))
        {
            b.Emit(word ? Code.Pushaw : Code.Pushad);
            for (int i = b.Rng.Next(0, 3); i > 0; i--)
                b.Emit(Instruction.Create(Code.Mov_r32_imm32, R(b.Reg(), 4), (int)b.Value(4)));
            if (b.Chance(70)) b.Emit(word ? Code.Popaw : Code.Popad);
        }
        else b.Emit(word ? Code.Popaw : Code.Popad); // pops whatever the stack page holds
    }

    public static void PushfPopf(CaseBuilder b)
    {
        bool word = b.Chance(25);
        if (b.Chance(50))
        {
            // popf of arithmetic flags and DF only: IF/IOPL/TF/AC differ between ring 3 and the emulator's ring 0.
            uint v = ((uint)b.Rng.Next() & DiffCase.ComparedFlags) | Fl.Fixed1;
            if (word) { b.Emit(Instruction.Create(Code.Push_imm16, (short)v)); b.Emit(Code.Popfw); }
            else { b.Emit(Instruction.Create(Code.Pushd_imm32, (int)v)); b.Emit(Code.Popfd); }
            b.FlagsWritten(Fl.Arith, 0);
            if (b.Chance(50)) b.FlagConsumer();
        }
        else
        {
            if (b.Chance(50)) TwoOperand(b, b.Pick(ArithOps), 0);
            int r = b.Reg();
            b.Emit(word ? Code.Pushfw : Code.Pushfd);
            b.Emit(Instruction.Create(word ? Code.Pop_r16 : Code.Pop_r32, R(r, word ? 2 : 4)));
            // keep only the compared bits; this and leaves AF undefined but CF/OF cleared, ZF/SF/PF from the value
            b.Emit(Instruction.Create(word ? Code.And_rm16_imm16 : Code.And_rm32_imm32, R(r, word ? 2 : 4), (int)(DiffCase.ComparedFlags & ~b.UndefinedFlags)));
            b.FlagsWritten(Fl.Arith, SdmUndefined.Flags(Mnemonic.And, 4));
        }
    }

    public static void LahfSahf(CaseBuilder b)
    {
        b.Fix(0);
        if (b.Chance(50))
        {
            b.SetReg(4, 1, b.Value(1));
            b.Emit(Code.Sahf);
            b.FlagsWritten(Fl.CF | Fl.PF | Fl.AF | Fl.ZF | Fl.SF, 0);
            if (b.Chance(50)) b.FlagConsumer();
        }
        if (b.Chance(30)) TwoOperand(b, b.Pick(ArithOps), 0);
        if (b.Chance(70)) b.Emit(Code.Lahf);
    }

    public static void Convert(CaseBuilder b)
    {
        b.Fix(0); b.Fix(2);
        b.Regs[0] = b.Value(4);
        b.Regs[2] = b.Value(4);
        b.Emit(b.Pick(Code.Cbw, Code.Cwde, Code.Cwd, Code.Cdq));
    }

    public static void Xlat(CaseBuilder b)
    {
        b.Fix(0); b.Fix(Reg.EBX);
        int off = b.Rng.Next(0, 0xE00);
        b.Regs[Reg.EBX] = DiffCase.DataBase + (uint)off;
        b.SetReg(0, 4, b.Value(4));
        b.Asm.db([0xD7]); // xlatb
    }

    public static void Bound(CaseBuilder b)
    {
        int size = b.Pick(2, 4);
        int off = b.MemOffset(size * 2);
        int sh = 32 - size * 8;
        uint lo = b.Value(size), hi = b.Value(size);
        if (b.Chance(70) && (int)(lo << sh) > (int)(hi << sh)) (lo, hi) = (hi, lo);
        b.Poke(off, lo, size); b.Poke(off + size, hi, size);
        var m = b.Mem(off);
        int r = b.RegOf(size);
        uint v = b.Chance(60) && (int)(lo << sh) <= (int)(hi << sh)
            ? (uint)b.Rng.NextInt64((int)(lo << sh) >> sh, ((long)((int)(hi << sh) >> sh)) + 1)
            : b.Value(size);
        b.SetReg(r, size, v);
        b.Emit(Instruction.Create(size == 4 ? Code.Bound_r32_m3232 : Code.Bound_r16_m1616, R(r, size), m));
    }

    /// <summary>cpuid: the results are the host's (emulator: the host model's), so only the rest of the state is compared.</summary>
    public static void Cpuid(CaseBuilder b)
    {
        for (int r = 0; r < 4; r++) b.Fix(r);
        b.Regs[0] = (uint)b.Pick(0, 1);
        b.Regs[1] = 0;
        b.Emit(Code.Cpuid);
        for (int r = 0; r < 4; r++) b.RegUndefined(r, 4);
    }

    /// <summary>rdtsc: EDX:EAX is time; only the rest of the state is compared.</summary>
    public static void Rdtsc(CaseBuilder b)
    {
        b.Fix(0); b.Fix(2);
        b.Emit(Code.Rdtsc);
        b.RegUndefined(0, 4); b.RegUndefined(2, 4);
    }

    /// <summary>int3 (#BP, a trap: EIP after it) and into (#OF when OF is set).</summary>
    public static void Int3(CaseBuilder b)
    {
        if (b.Chance(40)) TwoOperand(b, b.Pick(ArithOps), 0);
        b.Emit(b.Chance(60) ? Code.Int3 : Code.Into);
    }
}
