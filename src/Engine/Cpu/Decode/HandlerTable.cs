using Iced.Intel;
using Replayvisor.Engine.Cpu.Handlers;

namespace Replayvisor.Engine.Cpu.Decode;

/// <summary>Chooses each instruction's handler at decode time, asking each family in turn.</summary>
public static unsafe class HandlerTable
{
    public static delegate*<X86Cpu, ref DecodedInsn, void> Select(ref DecodedInsn d)
    {
        if (d.Insn.IsInvalid) return &Misc.Ud;
        delegate*<X86Cpu, ref DecodedInsn, void> h;
        if ((h = DataMove.Select(ref d)) != null) return h;
        if ((h = Alu.Select(ref d)) != null) return h;
        if ((h = Branch.Select(ref d)) != null) return h;
        if ((h = Stack.Select(ref d)) != null) return h;
        if ((h = Misc.Select(ref d)) != null) return h;
        if ((h = SegmentOps.Select(ref d)) != null) return h;
        if ((h = SystemOps.Select(ref d)) != null) return h;
        if ((h = FarBranch.Select(ref d)) != null) return h;
        if ((h = Interrupts.Select(ref d)) != null) return h;
        if ((h = Shift.Select(ref d)) != null) return h;
        if ((h = MulDiv.Select(ref d)) != null) return h;
        if ((h = Bcd.Select(ref d)) != null) return h;
        if ((h = BitOps.Select(ref d)) != null) return h;
        if ((h = StringOps.Select(ref d)) != null) return h;
        if ((h = Atomic.Select(ref d)) != null) return h;
        if ((h = StackFrame.Select(ref d)) != null) return h;
        if ((h = FlagsConvert.Select(ref d)) != null) return h;
        if ((h = Io.Select(ref d)) != null) return h;
        if ((h = FpuControl.Select(ref d)) != null) return h;
        if ((h = FastSystemCall.Select(ref d)) != null) return h;
        return &Misc.Unsupported;
    }

    /// <summary>Instructions after which decoding stops even though control flows on (they change mode, paging, TF or IF).</summary>
    public static bool EndsBlock(in Instruction insn)
    {
        switch (insn.Mnemonic)
        {
            case Mnemonic.Popf: case Mnemonic.Popfd: case Mnemonic.Sti: case Mnemonic.Cli:
            case Mnemonic.Lgdt: case Mnemonic.Lidt: case Mnemonic.Lldt: case Mnemonic.Ltr: case Mnemonic.Lmsw:
            case Mnemonic.Clts: case Mnemonic.Invlpg: case Mnemonic.Wrmsr: case Mnemonic.Hlt: case Mnemonic.Lss:
            case Mnemonic.Wbinvd: case Mnemonic.Invd: case Mnemonic.Cpuid: case Mnemonic.Rdtsc:
            case Mnemonic.In: case Mnemonic.Out: case Mnemonic.Insb: case Mnemonic.Insw: case Mnemonic.Insd:
            case Mnemonic.Outsb: case Mnemonic.Outsw: case Mnemonic.Outsd:
                return true;
            case Mnemonic.Mov:
                return insn.Op0Kind == OpKind.Register && (insn.Op0Register.IsCR() || insn.Op0Register.IsDR() || insn.Op0Register == Register.SS);
            case Mnemonic.Pop:
                return insn.Op0Kind == OpKind.Register && insn.Op0Register == Register.SS;
            default:
                return false;
        }
    }
}
