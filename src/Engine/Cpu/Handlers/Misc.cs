using Iced.Intel;
using Replayvisor.Engine.Cpu.Decode;

namespace Replayvisor.Engine.Cpu.Handlers;

/// <summary>hlt, flag-bit instructions, cli/sti, the memory fences, ud2/invalid encodings, and the unsupported stop.</summary>
internal static unsafe class Misc
{
    public static delegate*<X86Cpu, ref DecodedInsn, void> Select(ref DecodedInsn d)
    {
        switch (d.Insn.Mnemonic)
        {
            case Mnemonic.Hlt: return &Hlt;
            case Mnemonic.Clc: return &Clc;
            case Mnemonic.Stc: return &Stc;
            case Mnemonic.Cmc: return &Cmc;
            case Mnemonic.Cld: return &Cld;
            case Mnemonic.Std: return &Std;
            case Mnemonic.Cli: return &Cli;
            case Mnemonic.Sti: return &Sti;
            case Mnemonic.Ud2: case Mnemonic.Ud0: case Mnemonic.Ud1: return &Ud;
            case Mnemonic.Mfence: case Mnemonic.Lfence: case Mnemonic.Sfence: return &Fence;
            default: return null;
        }
    }

    public static void Ud(X86Cpu c, ref DecodedInsn d) => c.RaiseUd();

    /// <summary>
    /// mfence, lfence, sfence (SDM vol. 2): order loads and stores against each other. The model
    /// executes one access at a time with no store buffer, so they only retire. They execute
    /// although CPUID does not show SSE2, as on every processor a 64-bit Xen runs on (GRUB's
    /// i386-xen image uses mfence as its memory barrier without asking CPUID).
    /// </summary>
    private static void Fence(X86Cpu c, ref DecodedInsn d) { }

    public static void Unsupported(X86Cpu c, ref DecodedInsn d) => c.StopUnsupported(ref d);

    /// <summary>hlt is privileged: #GP(0) unless CPL 0 (SDM vol. 2 HLT).</summary>
    private static void Hlt(X86Cpu c, ref DecodedInsn d)
    {
        if (c.Cpl != 0) { c.RaiseGp(0); return; }
        c.Host.Halt(c);
        c.NoteCodeSegment(); // the host may have delivered an event meanwhile
        c.Exit |= CpuExit.Branch;
    }

    private static void Clc(X86Cpu c, ref DecodedInsn d) => c.SetArith(Fl.CF, 0);
    private static void Stc(X86Cpu c, ref DecodedInsn d) => c.SetArith(Fl.CF, Fl.CF);
    private static void Cmc(X86Cpu c, ref DecodedInsn d) => c.SetArith(Fl.CF, c.CF ? 0 : Fl.CF);
    private static void Cld(X86Cpu c, ref DecodedInsn d) => c.FlagsReg &= ~Fl.DF;
    private static void Std(X86Cpu c, ref DecodedInsn d) => c.FlagsReg |= Fl.DF;

    /// <summary>cli/sti need CPL ≤ IOPL in protected mode, else #GP(0) (SDM vol. 2 CLI, STI; no VME/PVI here).</summary>
    private static void Cli(X86Cpu c, ref DecodedInsn d)
    {
        if (c.Cpl > c.Iopl) { c.RaiseGp(0); return; }
        c.FlagsReg &= ~Fl.IF;
    }

    private static void Sti(X86Cpu c, ref DecodedInsn d)
    {
        if (c.Cpl > c.Iopl) { c.RaiseGp(0); return; }
        c.FlagsReg |= Fl.IF;
    }
}
