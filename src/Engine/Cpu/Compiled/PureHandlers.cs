using Iced.Intel;
using Replayvisor.Engine.Cpu.Decode;

namespace Replayvisor.Engine.Cpu.Compiled;

/// <summary>
/// Instructions without a translation whose handlers change nothing but general registers,
/// arithmetic flags and DF, and at most read memory: no store, no segment, control, debug or TLB
/// state, no TF, no input. After such a handler a member may still branch to another member of
/// its region: what the run loop would check after it cannot have changed, and a fault it raises
/// (#DE, #PF on the read) sets the exit flag the handler call checks.
/// </summary>
internal static class PureHandlers
{
    public static bool KeepsLinking(ref DecodedInsn d)
    {
        var insn = d.Insn;
        if (insn.IsInvalid || d.Lock != 0) return false;
        switch (insn.Mnemonic)
        {
            // Results into registers (and flags) from registers or a memory read.
            case Mnemonic.Mul: case Mnemonic.Imul: case Mnemonic.Div: case Mnemonic.Idiv:
            case Mnemonic.Bsf: case Mnemonic.Bsr: case Mnemonic.Tzcnt: case Mnemonic.Lzcnt: case Mnemonic.Popcnt:
            case Mnemonic.Bt:
                return OperandsAreGeneral(insn);
            // Read-modify-write forms: on a register only.
            case Mnemonic.Rol: case Mnemonic.Ror: case Mnemonic.Rcl: case Mnemonic.Rcr:
            case Mnemonic.Shl: case Mnemonic.Sal: case Mnemonic.Shr: case Mnemonic.Sar:
            case Mnemonic.Shld: case Mnemonic.Shrd:
            case Mnemonic.Bts: case Mnemonic.Btr: case Mnemonic.Btc:
            case Mnemonic.Bswap: case Mnemonic.Xadd: case Mnemonic.Cmpxchg:
                return d.MemOps == 0 && OperandsAreGeneral(insn);
            // Register-only conversions and flag bits (DF lives beside the arithmetic flags in FlagsReg).
            case Mnemonic.Cdq: case Mnemonic.Cwde: case Mnemonic.Cbw: case Mnemonic.Cwd:
            case Mnemonic.Clc: case Mnemonic.Stc: case Mnemonic.Cmc: case Mnemonic.Cld: case Mnemonic.Std:
            case Mnemonic.Lahf: case Mnemonic.Sahf:
                return true;
            default:
                return false;
        }
    }

    private static bool OperandsAreGeneral(in Instruction insn)
    {
        for (int i = 0; i < insn.OpCount; i++)
        {
            if (insn.GetOpKind(i) != OpKind.Register) continue;
            Register r = insn.GetOpRegister(i);
            if (!(r.IsGPR8() || r.IsGPR16() || r.IsGPR32())) return false;
        }
        return true;
    }
}
