using Iced.Intel;
using Replayvisor.Engine.Cpu;

namespace Replayvisor.Engine.Tests.Differential;

/// <summary>
/// What a generator uses to make one case: seeded values (edge and random), register choice that
/// keeps addressing registers and ESP out of the operands, memory operands into the data page with
/// varied addressing modes, an Iced assembler, and the undefined-flag bookkeeping.
/// </summary>
public sealed class CaseBuilder
{
    public Random Rng { get; }
    public readonly uint[] Regs = new uint[8];
    public uint Eflags;
    public readonly Assembler Asm = new(32);
    public uint UndefinedFlags;
    public readonly uint[] UndefinedRegBits = new uint[8];
    /// <summary>The page above the data area for this case (unmapped unless a generator asks for read-only).</summary>
    public GuardPage Guard;
    /// <summary>Set by generators whose cases depend on the privilege level (compared at ring 3 only).</summary>
    public bool Ring3Only;
    private readonly List<(int, int)> _faultUndefined = new();

    /// <summary>Data-area bytes whose contents the SDM leaves undefined when the case faults (the generator says why).</summary>
    public void DataUndefinedOnFault(int offset, int length) { if (length > 0) _faultUndefined.Add((offset, length)); }
    private readonly List<(ushort, byte[])> _patches = new();
    private readonly bool[] _fixed = new bool[8];
    private readonly bool[] _used = new bool[8];
    private readonly uint _fillSeed;
    private int _sinkSlot;

    /// <summary>Offset in the data page where flag consumers store their setcc bytes.</summary>
    public const int SinkOffset = 0xFC0;
    /// <summary>Memory operands land below this offset of the data area (the stack page starts at 0x1000).</summary>
    public const int MemLimit = 0x1100;

    public static readonly uint[] EdgeValues =
    [
        0, 1, 2, 3, 0x7F, 0x80, 0x81, 0xFE, 0xFF, 0x100, 0x7FFF, 0x8000, 0x8001, 0xFFFE, 0xFFFF, 0x10000,
        0x7FFFFFFF, 0x80000000, 0x80000001, 0xFFFFFFFE, 0xFFFFFFFF, 0x0F, 0x10, 0x99, 0x09, 0x55555555, 0xAAAAAAAA,
    ];

    public CaseBuilder(Random rng)
    {
        Rng = rng;
        for (int i = 0; i < 8; i++) Regs[i] = Value(4);
        Regs[Engine.Cpu.Reg.ESP] = DiffCase.StackTop;
        _fixed[Engine.Cpu.Reg.ESP] = true;
        Eflags = (uint)rng.Next() & DiffCase.ComparedFlags;
        _fillSeed = (uint)rng.Next() | 1;
    }

    public bool Chance(int percent) => Rng.Next(100) < percent;
    public T Pick<T>(params T[] items) => items[Rng.Next(items.Length)];
    public int Size() => Pick(1, 2, 4);
    public static int Bits(int size) => size * 8;
    public static uint Mask(int size) => X86Cpu.SizeMask(size);

    /// <summary>An operand value: edge values (also sign-adjacent ones), small numbers, or random bits.</summary>
    public uint Value(int size)
    {
        uint m = Mask(size);
        switch (Rng.Next(10))
        {
            case 0: case 1: case 2: return EdgeValues[Rng.Next(EdgeValues.Length)] & m;
            case 3: return (uint)Rng.Next(0, 40) & m;
            case 4: return (uint)-Rng.Next(1, 40) & m;
            case 5: return (SignBit(size) ^ (uint)Rng.Next(-3, 4)) & m;
            default: return (uint)Rng.NextInt64() & m;
        }
    }

    public static uint SignBit(int size) => X86Cpu.SignBit(size);

    /// <summary>Picks a general register (index 0-7, never ESP or one fixed for addressing) and marks it used.</summary>
    public int Reg()
    {
        for (int tries = 0; tries < 1000; tries++)
        {
            int r = Rng.Next(8);
            if (!_fixed[r]) { _used[r] = true; return r; }
        }
        throw new InvalidOperationException("no free register for an operand");
    }

    /// <summary>Picks an 8-bit register number (0-3 AL..BL, 4-7 AH..BH) whose 32-bit register is free.</summary>
    public int Reg8()
    {
        for (int tries = 0; tries < 1000; tries++)
        {
            int r = Rng.Next(8);
            if (!_fixed[r & 3]) { _used[r & 3] = true; return r; }
        }
        throw new InvalidOperationException("no free 8-bit register for an operand");
    }

    public int RegOf(int size) => size == 1 ? Reg8() : Reg();

    /// <summary>A register no operand has used yet, fixed from now on; -1 if none is left.</summary>
    public int FreshReg()
    {
        for (int tries = 0; tries < 32; tries++)
        {
            int r = Rng.Next(8);
            if (!_fixed[r] && !_used[r]) { Fix(r); return r; }
        }
        return -1;
    }

    /// <summary>Reserves register r for a fixed role (addressing, counter); operands will not pick it.</summary>
    public void Fix(int r) { _fixed[r] = true; _used[r] = true; }
    public bool IsFixed(int r) => _fixed[r];

    public static Register R(int r, int size) => size switch
    {
        4 => Register.EAX + r,
        2 => Register.AX + r,
        _ => Register.AL + r,
    };

    public void SetReg(int r, int size, uint v)
    {
        if (size == 4) Regs[r] = v;
        else if (size == 2) Regs[r] = (Regs[r] & 0xFFFF0000) | (v & 0xFFFF);
        else if (r < 4) Regs[r] = (Regs[r] & 0xFFFFFF00) | (v & 0xFF);
        else Regs[r - 4] = (Regs[r - 4] & 0xFFFF00FF) | ((v & 0xFF) << 8);
    }

    public uint GetReg(int r, int size) => size switch
    {
        4 => Regs[r],
        2 => Regs[r] & 0xFFFF,
        _ => r < 4 ? Regs[r] & 0xFF : (Regs[r - 4] >> 8) & 0xFF,
    };

    /// <summary>Picks a register of the size and loads it with a fresh operand value.</summary>
    public int RegWithValue(int size, out uint value)
    {
        int r = RegOf(size);
        value = Value(size);
        SetReg(r, size, value);
        return r;
    }

    /// <summary>Stores bytes into the initial data area (offset from <see cref="DiffCase.DataBase"/>).</summary>
    public void Poke(int offset, uint value, int size)
    {
        var b = new byte[size];
        for (int i = 0; i < size; i++) b[i] = (byte)(value >> (8 * i));
        _patches.Add(((ushort)offset, b));
    }

    public void PokeBytes(int offset, byte[] bytes) => _patches.Add(((ushort)offset, bytes));

    /// <summary>A random offset for an access of the given size (sometimes unaligned, sometimes crossing into the stack page).</summary>
    public int MemOffset(int size)
    {
        if (Chance(5)) return 0x1000 - Rng.Next(1, size + 1); // straddles the data/stack page boundary
        int off = Rng.Next(0, 0xF00 - 16);
        return Chance(70) ? off & ~(size - 1) : off;
    }

    /// <summary>
    /// A memory operand addressing data offset <paramref name="offset"/> with a random mode:
    /// [disp32], [base], [base+disp8], [base+disp32], [base+index*scale+disp], [index*scale+disp32].
    /// The registers it uses are fixed (no operand will overwrite them).
    /// </summary>
    public MemoryOperand Mem(int offset)
    {
        uint target = DiffCase.DataBase + (uint)offset;
        int free = 0;
        for (int r = 0; r < 8; r++) if (!_fixed[r] && !_used[r]) free++;
        switch (free >= 2 ? Rng.Next(6) : 0)
        {
            case 0:
                return new MemoryOperand(Register.None, (long)target, 4);
            case 1:
            {
                int b = AddrReg(); Regs[b] = target;
                return new MemoryOperand(R(b, 4));
            }
            case 2:
            {
                int b = AddrReg(); int disp = Rng.Next(-128, 128); Regs[b] = target - (uint)disp;
                return new MemoryOperand(R(b, 4), disp, 1);
            }
            case 3:
            {
                int b = AddrReg(); int disp = Rng.Next(-0x100000, 0x100000); Regs[b] = target - (uint)disp;
                return new MemoryOperand(R(b, 4), disp, 4);
            }
            case 4:
            {
                int b = AddrReg(), x = Chance(10) ? b : AddrReg(); int scale = Pick(1, 2, 4, 8);
                int disp = Chance(50) ? Rng.Next(-128, 128) : Rng.Next(-0x10000, 0x10000);
                int idx = Rng.Next(-64, 64);
                if (x == b) { Regs[b] = (uint)((target - (uint)disp) / (uint)(1 + scale)); disp = (int)(target - Regs[b] * (uint)(1 + scale)); }
                else { Regs[x] = (uint)idx; Regs[b] = target - (uint)disp - (uint)(idx * scale); }
                return new MemoryOperand(R(b, 4), R(x, 4), scale, disp, disp is >= -128 and < 128 ? 1 : 4);
            }
            default:
            {
                int x = AddrReg(); int scale = Pick(1, 2, 4, 8); int idx = Rng.Next(0, 256);
                Regs[x] = (uint)idx;
                return new MemoryOperand(Register.None, R(x, 4), scale, (long)(target - (uint)(idx * scale)), 4);
            }
        }
    }

    /// <summary>A memory operand of the size at a random offset, holding a fresh value; returns the offset.</summary>
    public MemoryOperand MemWithValue(int size, out uint value, out int offset)
    {
        offset = MemOffset(size);
        value = Value(size);
        Poke(offset, value, size);
        return Mem(offset);
    }

    private int FreeLowRegisters()
    {
        int n = 0;
        for (int i = 0; i < 4; i++) if (!_fixed[i]) n++;
        return n;
    }

    /// <summary>
    /// Picks and fixes a register for addressing. It keeps one of EAX..EBX unfixed when it can, so
    /// an 8-bit operand can still be picked afterwards (Reg8).
    /// </summary>
    private int AddrReg()
    {
        Span<int> preferred = stackalloc int[8], any = stackalloc int[8];
        int np = 0, na = 0;
        for (int r = 0; r < 8; r++)
        {
            if (_fixed[r] || _used[r]) continue;
            any[na++] = r;
            if (r >= 4 || FreeLowRegisters() > 1) preferred[np++] = r;
        }
        if (na == 0) throw new InvalidOperationException("no free address register");
        int pick = np > 0 ? preferred[Rng.Next(np)] : any[Rng.Next(na)];
        Fix(pick);
        return pick;
    }

    public void Emit(Instruction i) => Asm.AddInstruction(i);
    public void Emit(Code c) => Asm.AddInstruction(Instruction.Create(c));

    /// <summary>Records a flag-writing instruction: <paramref name="written"/> bits now have fresh values, <paramref name="undefined"/> of them undefined.</summary>
    public void FlagsWritten(uint written, uint undefined) => UndefinedFlags = (UndefinedFlags & ~written) | undefined;

    /// <summary>Marks a register's bits undefined at the end (8/16-bit registers mark their part).</summary>
    public void RegUndefined(int r, int size)
    {
        if (size == 4) UndefinedRegBits[r] = 0xFFFFFFFF;
        else if (size == 2) UndefinedRegBits[r] |= 0xFFFF;
        else if (r < 4) UndefinedRegBits[r] |= 0xFF;
        else UndefinedRegBits[r - 4] |= 0xFF00;
    }

    private static readonly uint[] CcFlags =
    [
        Fl.OF, Fl.CF, Fl.ZF, Fl.CF | Fl.ZF, Fl.SF, Fl.PF, Fl.SF | Fl.OF, Fl.ZF | Fl.SF | Fl.OF,
    ];

    /// <summary>
    /// Appends a reader of the current flags (setcc to memory, a jcc over a marker store, or
    /// cmovcc), with a condition reading only defined flags, so lazy-flag evaluation paths are
    /// exercised beyond the final EFLAGS read. Does nothing if every condition reads an undefined flag.
    /// </summary>
    public void FlagConsumer()
    {
        int cc = -1;
        for (int tries = 0; tries < 16 && cc < 0; tries++)
        {
            int c = Rng.Next(16);
            if ((CcFlags[c >> 1] & UndefinedFlags) == 0) cc = c;
        }
        if (cc < 0) return;
        int slot = SinkOffset + (_sinkSlot++ & 31);
        var mem = new MemoryOperand(Register.None, (long)(DiffCase.DataBase + (uint)slot), 4);
        switch (Rng.Next(3))
        {
            case 0:
                Emit(Instruction.Create(SetccCode(cc), mem));
                break;
            case 1:
            {
                var skip = Asm.CreateLabel();
                Jcc(cc, skip);
                Emit(Instruction.Create(Code.Mov_rm8_imm8, mem, 0x5A));
                Asm.Label(ref skip);
                Emit(Code.Nopd);
                break;
            }
            default:
            {
                int dst = FreshReg();
                if (dst < 0) { Emit(Instruction.Create(SetccCode(cc), mem)); break; }
                Emit(Instruction.Create(CmovCode(cc), R(dst, 4), new MemoryOperand(Register.None, (long)(DiffCase.DataBase + (uint)SinkOffset - 0x40 + 4 * (uint)Rng.Next(8)), 4)));
                break;
            }
        }
    }

    /// <summary>Condition suffixes in cc-nibble order (SDM vol. 1 appendix B).</summary>
    public static readonly string[] CcNames = ["o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"];
    private static readonly Code[] SetccCodes = CcNames.Select(n => Enum.Parse<Code>($"Set{n}_rm8")).ToArray();
    private static readonly Code[] Cmov32Codes = CcNames.Select(n => Enum.Parse<Code>($"Cmov{n}_r32_rm32")).ToArray();
    private static readonly Code[] Cmov16Codes = CcNames.Select(n => Enum.Parse<Code>($"Cmov{n}_r16_rm16")).ToArray();

    public static Code SetccCode(int cc) => SetccCodes[cc];
    public static Code CmovCode(int cc, int size = 4) => size == 4 ? Cmov32Codes[cc] : Cmov16Codes[cc];

    /// <summary>An Iced code by name, e.g. Op("Add", "rm32_imm8").</summary>
    public static Code Op(string mnemonic, string form) => Enum.Parse<Code>($"{mnemonic}_{form}");

    /// <summary>jcc to a label by condition nibble.</summary>
    public void Jcc(int cc, Label l)
    {
        switch (cc)
        {
            case 0: Asm.jo(l); break; case 1: Asm.jno(l); break; case 2: Asm.jb(l); break; case 3: Asm.jae(l); break;
            case 4: Asm.je(l); break; case 5: Asm.jne(l); break; case 6: Asm.jbe(l); break; case 7: Asm.ja(l); break;
            case 8: Asm.js(l); break; case 9: Asm.jns(l); break; case 10: Asm.jp(l); break; case 11: Asm.jnp(l); break;
            case 12: Asm.jl(l); break; case 13: Asm.jge(l); break; case 14: Asm.jle(l); break; default: Asm.jg(l); break;
        }
    }

    public DiffCase Build(string family, int id)
    {
        var w = new ByteWriter();
        Asm.Assemble(w, DiffCase.CodeBase);
        return new DiffCase
        {
            Id = id,
            Family = family,
            Code = w.ToArray(),
            Regs = (uint[])Regs.Clone(),
            Eflags = Eflags,
            FillSeed = _fillSeed,
            Patches = new(_patches),
            UndefinedFlags = UndefinedFlags,
            UndefinedRegBits = (uint[])UndefinedRegBits.Clone(),
            Guard = Guard,
            Ring3Only = Ring3Only,
            DataUndefinedOnFault = new(_faultUndefined),
        };
    }

    private sealed class ByteWriter : CodeWriter
    {
        private readonly List<byte> _bytes = new();
        public override void WriteByte(byte value) => _bytes.Add(value);
        public byte[] ToArray() => _bytes.ToArray();
    }
}
