using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Replayvisor.Engine.Cpu.Decode;

namespace Replayvisor.Engine.Cpu;

/// <summary>
/// What compiled regions call: the memory context they keep in locals (the TLB-hit path is
/// emitted inline, Compiled/EmitMemory.cs, with the checks of <see cref="RmwRef"/>; an access it
/// does not handle leaves the region, and the run loop runs the rest of the block under the block
/// cache, ExecCompiledEnd), and the lazy-flag evaluations, which fold to a few instructions because
/// the compiler passes the operation and size as constants.
/// </summary>
public sealed partial class X86Cpu
{
    // The memory context compiled regions keep in locals (Compiled/EmitMemory.cs).
    internal static ref byte JitRam(X86Cpu c) => ref MemoryMarshal.GetArrayDataReference(c._ram);
    internal static ref ulong JitTlb(X86Cpu c) => ref MemoryMarshal.GetArrayDataReference(c._tlb);
    internal static ref ulong JitCodeLines(X86Cpu c) => ref MemoryMarshal.GetArrayDataReference(c._codeLines);
    internal static ref byte JitDirty(X86Cpu c) => ref MemoryMarshal.GetArrayDataReference(c._dirty);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ref SegmentCache JitSeg(X86Cpu c, int seg) => ref c.SegAt(seg);

    /// <summary>Runs an instruction's handler from a compiled block (the instructions the compiler does not translate).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static unsafe void JitHandler(X86Cpu c, ref DecodedInsn d) => d.Exec(c, ref d);

    /// <summary>The first GPR, for compiled code that keeps registers in locals (no bounds checks).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ref uint JitGpr(X86Cpu c) => ref MemoryMarshal.GetArrayDataReference(c.Gpr);

    /// <summary>#GP(0) for a near branch beyond the CS limit, raised by the instruction at eip.</summary>
    internal static void JitRaiseGp(X86Cpu c, uint eip)
    {
        c.InsnEip = eip;
        c.RaiseGp(0);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool JitStack32(X86Cpu c) => c.SegAt(Seg.SS).Big;

    /// <summary>Condition cc (as <see cref="Condition"/>) from lazy-flag operands held by compiled code.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool JitCond(int cc, CcOp op, int size, uint res, uint a, uint b, uint carry)
    {
        uint m = SizeMask(size), sign = SignBit(size);
        if (op == CcOp.Sub && cc >= 2 && (cc < 8 || cc >= 12))
        {
            uint ma = a & m, mb = b & m;
            switch (cc)
            {
                case 2: return ma < mb;
                case 3: return ma >= mb;
                case 4: return ma == mb;
                case 5: return ma != mb;
                case 6: return ma <= mb;
                case 7: return ma > mb;
                default:
                {
                    int sh = 32 - size * 8;
                    int sa = (int)(ma << sh) >> sh, sb = (int)(mb << sh) >> sh;
                    return cc switch { 0xC => sa < sb, 0xD => sa >= sb, 0xE => sa <= sb, _ => sa > sb };
                }
            }
        }
        bool r;
        switch (cc >> 1)
        {
            case 2: r = (res & m) == 0; break;
            case 4: r = (res & sign) != 0; break;
            default:
            {
                uint f = ArithFlags(op, size, res, a, b, carry);
                r = (cc >> 1) switch
                {
                    0 => (f & Fl.OF) != 0,
                    1 => (f & Fl.CF) != 0,
                    3 => (f & (Fl.CF | Fl.ZF)) != 0,
                    5 => (f & Fl.PF) != 0,
                    6 => ((f & Fl.SF) != 0) != ((f & Fl.OF) != 0),
                    _ => (f & Fl.ZF) != 0 || ((f & Fl.SF) != 0) != ((f & Fl.OF) != 0),
                };
                break;
            }
        }
        return (cc & 1) != 0 ? !r : r;
    }

    /// <summary>CF (0 or 1) from lazy-flag operands held by compiled code.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static uint JitCarry(CcOp op, int size, uint res, uint a, uint b, uint carry)
    {
        uint m = SizeMask(size);
        switch (op)
        {
            case CcOp.Logic: return 0;
            case CcOp.Sub: return (a & m) < (b & m) ? 1u : 0u;
            case CcOp.Add: return (res & m) < (a & m) ? 1u : 0u;
            case CcOp.Inc: case CcOp.Dec: return carry & 1;
            default: return ArithFlags(op, size, res, a, b, carry) & Fl.CF;
        }
    }

    /// <summary>CF (0 or 1) from the CPU's lazy-flag fields.</summary>
    internal static uint JitCpuCarry(X86Cpu c) => c.CF ? 1u : 0u;

    internal static bool JitCpuCond(X86Cpu c, int cc) => c.Condition(cc);
}
