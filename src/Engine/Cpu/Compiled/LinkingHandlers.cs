using Iced.Intel;
using Replayvisor.Engine.Cpu.Decode;

namespace Replayvisor.Engine.Cpu.Compiled;

/// <summary>
/// Instructions without a translation whose handlers change nothing the run loop checks between
/// blocks (docs/compiled-tier.md "Linking"): general registers, arithmetic flags and DF, memory,
/// and the data segments DS/ES/FS/GS, but never SS or CS, CPL, TF or IF, DR7, a control register,
/// the TLB, the host (I/O, TSC, CPUID) or a stop request. After such a handler a member may still
/// branch to another member of its region: the compiled code reloads its memory context (segment
/// bounds, TLB, code lines) after every handler, a fault the handler raises sets the exit flag the
/// handler call checks, and so does a store into the running region's code (BlockCache.Invalidate).
/// </summary>
internal static class LinkingHandlers
{
    public static bool KeepsLinking(ref DecodedInsn d)
    {
        var insn = d.Insn;
        // No control, debug, x87, MMX or XMM register (Iced names the SSE movsd/cmpsd as the string ones).
        if (insn.IsInvalid || !BlockEmitter.OperandsAreGeneral(insn, segments: true)) return false;
        switch (insn.Mnemonic)
        {
            case Mnemonic.Mul: case Mnemonic.Imul: case Mnemonic.Div: case Mnemonic.Idiv:
            case Mnemonic.Bsf: case Mnemonic.Bsr: case Mnemonic.Tzcnt: case Mnemonic.Lzcnt: case Mnemonic.Popcnt:
            case Mnemonic.Bt: case Mnemonic.Bts: case Mnemonic.Btr: case Mnemonic.Btc:
            case Mnemonic.Rol: case Mnemonic.Ror: case Mnemonic.Rcl: case Mnemonic.Rcr:
            case Mnemonic.Shl: case Mnemonic.Sal: case Mnemonic.Shr: case Mnemonic.Sar:
            case Mnemonic.Shld: case Mnemonic.Shrd:
            case Mnemonic.Add: case Mnemonic.Adc: case Mnemonic.Sub: case Mnemonic.Sbb:
            case Mnemonic.And: case Mnemonic.Or: case Mnemonic.Xor: case Mnemonic.Inc: case Mnemonic.Dec:
            case Mnemonic.Neg: case Mnemonic.Not:
            case Mnemonic.Bswap: case Mnemonic.Xchg: case Mnemonic.Xadd: case Mnemonic.Cmpxchg: case Mnemonic.Cmpxchg8b:
            case Mnemonic.Cdq: case Mnemonic.Cwde: case Mnemonic.Cbw: case Mnemonic.Cwd:
            case Mnemonic.Clc: case Mnemonic.Stc: case Mnemonic.Cmc: case Mnemonic.Cld: case Mnemonic.Std:
            case Mnemonic.Lahf: case Mnemonic.Sahf:
            case Mnemonic.Pusha: case Mnemonic.Pushad: case Mnemonic.Popa: case Mnemonic.Popad:
            case Mnemonic.Pushf: case Mnemonic.Pushfd:
                return true;
            // One iteration at most: a rep that runs several ends its member (docs/compiled-tier.md "Measuring").
            case Mnemonic.Movsb: case Mnemonic.Movsw: case Mnemonic.Movsd:
            case Mnemonic.Stosb: case Mnemonic.Stosw: case Mnemonic.Stosd:
            case Mnemonic.Lodsb: case Mnemonic.Lodsw: case Mnemonic.Lodsd:
            case Mnemonic.Cmpsb: case Mnemonic.Cmpsw: case Mnemonic.Cmpsd:
            case Mnemonic.Scasb: case Mnemonic.Scasw: case Mnemonic.Scasd:
                return !insn.HasRepPrefix && !insn.HasRepePrefix && !insn.HasRepnePrefix;
            // Segment registers: read any; load DS, ES, FS or GS only (an SS load holds off traps and events for one instruction).
            case Mnemonic.Push:
                return true;
            case Mnemonic.Pop: case Mnemonic.Mov:
                return insn.Op0Kind != OpKind.Register || !insn.Op0Register.IsSegmentRegister() || IsDataSegment(insn.Op0Register);
            case Mnemonic.Lds: case Mnemonic.Les: case Mnemonic.Lfs: case Mnemonic.Lgs:
                return true;
            default:
                return false;
        }
    }

    private static bool IsDataSegment(Register r) => r is Register.DS or Register.ES or Register.FS or Register.GS;
}
