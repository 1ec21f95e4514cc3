using Iced.Intel;

namespace Replayvisor.Engine.Cpu;

/// <summary>
/// DR7 instruction breakpoints and the MOV SS / POP SS shadow on single-step (SDM vol. 3 §17.2.4,
/// §17.3.1.1, §17.3.1.4; vol. 2 MOV, POP). Kept to two small hooks in the run loop: while an
/// instruction breakpoint is enabled the loop runs one instruction per block and checks CS:EIP
/// before each (<see cref="InstructionBreakpoint"/>); a single-step #DB after an instruction that
/// loads SS is held back until the next instruction has executed (<see cref="ShadowsSingleStep"/>).
/// Data breakpoints are not modelled.
/// </summary>
public sealed partial class X86Cpu
{
    /// <summary>DR7 enables at least one breakpoint (L or G bit) whose R/W field is 00 (instruction execution).</summary>
    internal bool InstructionBreakpointsArmed
    {
        get
        {
            uint d7 = Dr[7];
            if ((d7 & 0xFF) == 0) return false;
            for (int i = 0; i < 4; i++)
                if (((d7 >> (i * 2)) & 3) != 0 && ((d7 >> (16 + i * 4)) & 3) == 0) return true;
            return false;
        }
    }

    /// <summary>
    /// Before the instruction at CS:EIP: every enabled instruction breakpoint at its linear address sets
    /// its B bit in DR6 and raises #DB as a fault (EIP at the instruction), unless EFLAGS.RF is set.
    /// </summary>
    private bool InstructionBreakpoint()
    {
        if ((FlagsReg & Fl.RF) != 0) return false;
        uint lin = Segs[Seg.CS].Base + Eip, d7 = Dr[7], hits = 0;
        for (int i = 0; i < 4; i++)
            if (((d7 >> (i * 2)) & 3) != 0 && ((d7 >> (16 + i * 4)) & 3) == 0 && Dr[i] == lin) hits |= 1u << i;
        if (hits == 0) return false;
        InsnEip = Eip;
        Dr[6] = (Dr[6] & ~0xFu) | hits;
        RaiseFault(Vectors.DB, 0);
        return true;
    }

    /// <summary>MOV SS and POP SS inhibit the single-step #DB that would follow them (SDM vol. 2 MOV: "the processor inhibits ... debug exceptions until the next instruction").</summary>
    private static bool ShadowsSingleStep(in Instruction insn) =>
        insn.Op0Kind == OpKind.Register && insn.Op0Register == Register.SS && insn.Mnemonic is Mnemonic.Mov or Mnemonic.Pop;
}
