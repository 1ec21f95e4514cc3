using System.Numerics;
using System.Runtime.CompilerServices;

namespace Replayvisor.Engine.Cpu;

/// <summary>Which operation last set the arithmetic flags (lazy flags, as QEMU's CC_OP).</summary>
public enum CcOp : byte
{
    /// <summary>The arithmetic flags are in <see cref="X86Cpu.FlagsReg"/>.</summary>
    None, Add, Adc, Sub, Sbb, Logic, Inc, Dec,
    /// <summary>
    /// shl/sal, shr, sar by a masked count of 1-31 (set by compiled code): CcA the operand before,
    /// CcB the count, CcRes the result; the flags are those Handlers/Shift.cs computes, its choices
    /// for the undefined ones included (AF 0; OF by the count-1 formula; CF 0 past the width for shl).
    /// </summary>
    Shl, Shr, Sar,
    /// <summary>imul with two or three operands, 32-bit mul and imul with one (set by compiled code): CcRes the result (its low half), CcCarry 1 when it overflowed (CF = OF); SF ZF PF of CcRes, AF 0 (Handlers/MulDiv.cs).</summary>
    Mul,
}

public sealed partial class X86Cpu
{
    /// <summary>EFLAGS; its arithmetic bits are valid only while <see cref="CcKind"/> is None.</summary>
    public uint FlagsReg = Fl.Fixed1;
    public CcOp CcKind;
    public byte CcSize;
    public uint CcRes, CcA, CcB;
    /// <summary>For Inc/Dec: the carry flag from before; for Adc/Sbb: the carry-in.</summary>
    public uint CcCarry;

    private static readonly byte[] ParityTable = BuildParity();

    private static byte[] BuildParity()
    {
        var t = new byte[256];
        for (int i = 0; i < 256; i++) t[i] = (byte)((BitOperations.PopCount((uint)i) & 1) == 0 ? Fl.PF : 0);
        return t;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint SizeMask(int size) => size == 4 ? 0xFFFFFFFFu : (1u << (size * 8)) - 1;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint SignBit(int size) => 1u << (size * 8 - 1);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void SetCc(CcOp op, int size, uint res, uint a, uint b)
    {
        CcKind = op; CcSize = (byte)size; CcRes = res; CcA = a; CcB = b;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void SetCcCarry(CcOp op, int size, uint res, uint a, uint b, uint carry)
    {
        CcKind = op; CcSize = (byte)size; CcRes = res; CcA = a; CcB = b; CcCarry = carry;
    }

    /// <summary>Computes the six arithmetic flags from the lazy state.</summary>
    private uint ComputeArith() => ArithFlags(CcKind, CcSize, CcRes, CcA, CcB, CcCarry);

    /// <summary>The six arithmetic flags of a lazily recorded operation (also used by compiled blocks).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static uint ArithFlags(CcOp kind, int size, uint res, uint ra, uint rb, uint carry)
    {
        uint mask = SizeMask(size), sign = SignBit(size);
        uint r = res & mask, a = ra & mask, b = rb & mask;
        uint f = ParityTable[r & 0xFF];
        if (r == 0) f |= Fl.ZF;
        if ((r & sign) != 0) f |= Fl.SF;
        switch (kind)
        {
            case CcOp.Add:
                if (r < a) f |= Fl.CF;
                if (((a ^ r) & (b ^ r) & sign) != 0) f |= Fl.OF;
                f |= (a ^ b ^ r) & Fl.AF;
                break;
            case CcOp.Adc:
                if (carry != 0 ? r <= a : r < a) f |= Fl.CF;
                if (((a ^ r) & (b ^ r) & sign) != 0) f |= Fl.OF;
                f |= (a ^ b ^ r) & Fl.AF;
                break;
            case CcOp.Sub:
                if (a < b) f |= Fl.CF;
                if (((a ^ b) & (a ^ r) & sign) != 0) f |= Fl.OF;
                f |= (a ^ b ^ r) & Fl.AF;
                break;
            case CcOp.Sbb:
                if (carry != 0 ? a <= b : a < b) f |= Fl.CF;
                if (((a ^ b) & (a ^ r) & sign) != 0) f |= Fl.OF;
                f |= (a ^ b ^ r) & Fl.AF;
                break;
            case CcOp.Logic:
                break;
            case CcOp.Inc:
                f |= carry & Fl.CF;
                if (r == sign) f |= Fl.OF;
                f |= (a ^ 1 ^ r) & Fl.AF;
                break;
            case CcOp.Dec:
                f |= carry & Fl.CF;
                if (r == sign - 1) f |= Fl.OF;
                f |= (a ^ 1 ^ r) & Fl.AF;
                break;
            case CcOp.Shl:
            {
                // CF: the last bit shifted out, bit (width - count) of the operand; 0 once the count passes the width.
                bool cf = (((ulong)a << (int)b >> (size * 8)) & 1) != 0;
                if (cf) f |= Fl.CF;
                if (((r & sign) != 0) != cf) f |= Fl.OF;
                break;
            }
            case CcOp.Shr:
                f |= (a >> ((int)b - 1)) & Fl.CF;
                if ((a & sign) != 0) f |= Fl.OF;
                break;
            case CcOp.Sar:
            {
                int sh = 32 - size * 8;
                f |= (uint)(((int)(a << sh) >> sh) >> ((int)b - 1)) & Fl.CF;
                break;
            }
            case CcOp.Mul:
                if ((carry & 1) != 0) f |= Fl.CF | Fl.OF;
                break;
        }
        return f;
    }

    /// <summary>Folds lazy flags into <see cref="FlagsReg"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void MaterializeFlags()
    {
        if (CcKind == CcOp.None) return;
        FlagsReg = (FlagsReg & ~Fl.Arith) | ComputeArith();
        CcKind = CcOp.None;
    }

    /// <summary>The architectural EFLAGS value.</summary>
    public uint Eflags
    {
        get { MaterializeFlags(); return FlagsReg; }
        set { CcKind = CcOp.None; FlagsReg = (value & 0x003F7FD5) | Fl.Fixed1; }
    }

    /// <summary>Sets the given arithmetic flag bits to the given values, leaving the others.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void SetArith(uint mask, uint values)
    {
        MaterializeFlags();
        FlagsReg = (FlagsReg & ~mask) | (values & mask);
    }

    public bool CF
    {
        get
        {
            switch (CcKind)
            {
                case CcOp.None: return (FlagsReg & Fl.CF) != 0;
                case CcOp.Logic: return false;
                case CcOp.Sub: { uint m = SizeMask(CcSize); return (CcA & m) < (CcB & m); }
                case CcOp.Add: { uint m = SizeMask(CcSize); return (CcRes & m) < (CcA & m); }
                case CcOp.Inc: case CcOp.Dec: return (CcCarry & 1) != 0;
                default: return (ComputeArith() & Fl.CF) != 0;
            }
        }
    }

    public bool ZF => CcKind == CcOp.None ? (FlagsReg & Fl.ZF) != 0 : (CcRes & SizeMask(CcSize)) == 0;
    public bool SF => CcKind == CcOp.None ? (FlagsReg & Fl.SF) != 0 : (CcRes & SignBit(CcSize)) != 0;
    public bool OF => CcKind == CcOp.None ? (FlagsReg & Fl.OF) != 0 : CcKind != CcOp.Logic && (ComputeArith() & Fl.OF) != 0;
    public bool PF => CcKind == CcOp.None ? (FlagsReg & Fl.PF) != 0 : ParityTable[CcRes & 0xFF] != 0;
    public bool DF => (FlagsReg & Fl.DF) != 0;

    /// <summary>Evaluates condition code cc (the low nibble of Jcc/SETcc/CMOVcc, SDM vol. 1 appendix B).</summary>
    public bool Condition(int cc)
    {
        // Fast path for compare/subtract: decide directly from the operands.
        if (CcKind == CcOp.Sub && cc >= 2)
        {
            uint m = SizeMask(CcSize), a = CcA & m, b = CcB & m;
            switch (cc)
            {
                case 2: return a < b;
                case 3: return a >= b;
                case 4: return a == b;
                case 5: return a != b;
                case 6: return a <= b;
                case 7: return a > b;
                case 0xC: case 0xD: case 0xE: case 0xF:
                {
                    int sh = 32 - CcSize * 8;
                    int sa = (int)(a << sh) >> sh, sb = (int)(b << sh) >> sh;
                    return cc switch { 0xC => sa < sb, 0xD => sa >= sb, 0xE => sa <= sb, _ => sa > sb };
                }
            }
        }
        bool r = (cc >> 1) switch
        {
            0 => OF,
            1 => CF,
            2 => ZF,
            3 => CF || ZF,
            4 => SF,
            5 => PF,
            6 => SF != OF,
            _ => ZF || SF != OF,
        };
        return (cc & 1) != 0 ? !r : r;
    }
}

/// <summary>A copy of the lazy-flag state, to undo flag updates of an instruction that faults late.</summary>
public readonly record struct CcSnapshot(uint FlagsReg, CcOp Kind, byte Size, uint Res, uint A, uint B, uint Carry);

public sealed partial class X86Cpu
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public CcSnapshot SaveCc() => new(FlagsReg, CcKind, CcSize, CcRes, CcA, CcB, CcCarry);

    public void RestoreCc(in CcSnapshot s)
    {
        FlagsReg = s.FlagsReg; CcKind = s.Kind; CcSize = s.Size; CcRes = s.Res; CcA = s.A; CcB = s.B; CcCarry = s.Carry;
    }
}
