using Iced.Intel;
using Replayvisor.Engine.Cpu.Decode;

namespace Replayvisor.Engine.Cpu.Handlers;

/// <summary>push and pop of general registers, memory and immediates (SDM vol. 2 PUSH/POP).</summary>
internal static unsafe class Stack
{
    public static delegate*<X86Cpu, ref DecodedInsn, void> Select(ref DecodedInsn d)
    {
        var insn = d.Insn;
        if (insn.OpCount != 1) return null;
        if (insn.Op0Kind == OpKind.Register && insn.Op0Register.IsSegmentRegister()) return null;
        if (insn.Mnemonic is not (Mnemonic.Push or Mnemonic.Pop)) return null; // leave d.Size alone for other families
        d.Size = (byte)(insn.Code.ToOpCode().OperandSize == 16 ? 2 : 4);
        switch (insn.Mnemonic)
        {
            case Mnemonic.Push:
                if (insn.Op0Kind == OpKind.Register) return d.Size == 4 ? &PushR32 : &PushR;
                if (insn.Op0Kind == OpKind.Memory) return &PushM;
                return &PushI;
            case Mnemonic.Pop:
                if (insn.Op0Kind == OpKind.Register) return d.Size == 4 ? &PopR32 : &PopR;
                return &PopM;
            default:
                return null;
        }
    }

    private static void PushR32(X86Cpu c, ref DecodedInsn d) => c.Push32(c.Gpr[d.R0]);

    /// <summary>pop r32; "pop esp" leaves the popped value in ESP.</summary>
    private static void PopR32(X86Cpu c, ref DecodedInsn d)
    {
        uint v = c.Pop32();
        if (!c.Faulted) c.Gpr[d.R0] = v;
    }
    private static void PushR(X86Cpu c, ref DecodedInsn d) => c.Push(c.GetReg(d.R0, d.Size), d.Size);
    private static void PushI(X86Cpu c, ref DecodedInsn d) => c.Push(d.Imm, d.Size);

    private static void PushM(X86Cpu c, ref DecodedInsn d)
    {
        uint v = c.Read(d.MemSeg, c.Ea(ref d), d.Size);
        if (!c.Faulted) c.Push(v, d.Size);
    }

    /// <summary>pop reg: "pop esp" leaves the popped value in ESP (SDM vol. 2 POP).</summary>
    private static void PopR(X86Cpu c, ref DecodedInsn d)
    {
        uint v = c.Pop(d.Size);
        if (!c.Faulted) c.SetReg(d.R0, d.Size, v);
    }

    /// <summary>pop m: the address is computed after ESP is incremented (SDM vol. 2 POP); ESP is restored on a fault.</summary>
    private static void PopM(X86Cpu c, ref DecodedInsn d)
    {
        uint oldEsp = c.Esp;
        uint v = c.Pop(d.Size);
        if (c.Faulted) return;
        c.Write(d.MemSeg, c.Ea(ref d), d.Size, v);
        if (c.Faulted) c.Esp = oldEsp;
    }
}
