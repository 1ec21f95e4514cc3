using Iced.Intel;
using Replayvisor.Engine.Cpu.Decode;

namespace Replayvisor.Engine.Cpu.Handlers;

/// <summary>mov (general registers, memory, immediates), movzx, movsx, lea, xchg, nop (SDM vol. 2).</summary>
internal static unsafe class DataMove
{
    public static delegate*<X86Cpu, ref DecodedInsn, void> Select(ref DecodedInsn d)
    {
        var insn = d.Insn;
        switch (insn.Mnemonic)
        {
            case Mnemonic.Mov:
            {
                // Segment, control and debug register moves belong to the system families.
                if (IsSpecialReg(insn, 0) || IsSpecialReg(insn, 1)) return null;
                bool imm = insn.GetOpKind(1) is not (OpKind.Register or OpKind.Memory);
                if (d.Op0IsMem) return imm ? &MovMI : d.Size == 4 ? &MovMR32 : &MovMR;
                if (d.Op1IsMem) return d.Size == 4 ? &MovRM32 : &MovRM;
                if (imm) return d.Size == 4 ? &MovRI32 : &MovRI;
                return d.Size == 4 ? &MovRR32 : &MovRR;
            }
            case Mnemonic.Movzx:
            case Mnemonic.Movsx:
                d.Cc = (byte)(insn.Mnemonic == Mnemonic.Movsx ? 1 : 0);
                d.Imm2 = d.Op1IsMem ? (uint)insn.MemorySize.GetSize() : RegSize(insn.GetOpRegister(1));
                return &MovExtend;
            case Mnemonic.Lea:
                return d.Size == 4 ? &Lea32 : &Lea;
            case Mnemonic.Xchg:
                return &Xchg;
            case Mnemonic.Nop:
                return &Nop;
            default:
                return null;
        }
    }

    private static bool IsSpecialReg(in Instruction insn, int op)
    {
        if (insn.GetOpKind(op) != OpKind.Register) return false;
        Register r = insn.GetOpRegister(op);
        return r.IsSegmentRegister() || r.IsCR() || r.IsDR() || r.IsTR();
    }

    private static uint RegSize(Register r) => (uint)r.GetSize();

    private static void MovRR32(X86Cpu c, ref DecodedInsn d) => c.Gpr[d.R0] = c.Gpr[d.R1];
    private static void MovRR(X86Cpu c, ref DecodedInsn d) => c.SetReg(d.R0, d.Size, c.GetReg(d.R1, d.Size));
    private static void MovRI32(X86Cpu c, ref DecodedInsn d) => c.Gpr[d.R0] = d.Imm;
    private static void MovRI(X86Cpu c, ref DecodedInsn d) => c.SetReg(d.R0, d.Size, d.Imm);

    private static void MovRM32(X86Cpu c, ref DecodedInsn d)
    {
        uint v = c.Read32(d.MemSeg, c.Ea(ref d));
        if (!c.Faulted) c.Gpr[d.R0] = v;
    }

    private static void MovRM(X86Cpu c, ref DecodedInsn d)
    {
        uint v = c.Read(d.MemSeg, c.Ea(ref d), d.Size);
        if (!c.Faulted) c.SetReg(d.R0, d.Size, v);
    }

    private static void MovMR(X86Cpu c, ref DecodedInsn d) => c.Write(d.MemSeg, c.Ea(ref d), d.Size, c.GetReg(d.R1, d.Size));
    private static void MovMR32(X86Cpu c, ref DecodedInsn d) => c.Write32(d.MemSeg, c.Ea(ref d), c.Gpr[d.R1]);
    private static void MovMI(X86Cpu c, ref DecodedInsn d) => c.Write(d.MemSeg, c.Ea(ref d), d.Size, d.Imm);

    private static void MovExtend(X86Cpu c, ref DecodedInsn d)
    {
        int from = (int)d.Imm2;
        uint v = d.Op1IsMem ? c.Read(d.MemSeg, c.Ea(ref d), from) : c.GetReg(d.R1, from);
        if (c.Faulted) return;
        if (d.Cc != 0) v = from == 1 ? (uint)(sbyte)v : (uint)(short)v;
        c.SetReg(d.R0, d.Size, v);
    }

    private static void Lea32(X86Cpu c, ref DecodedInsn d) => c.Gpr[d.R0] = c.Ea(ref d);
    private static void Lea(X86Cpu c, ref DecodedInsn d) => c.SetReg(d.R0, d.Size, c.Ea(ref d));

    /// <summary>xchg; with a memory operand it is locked implicitly (SDM vol. 2 XCHG).</summary>
    private static void Xchg(X86Cpu c, ref DecodedInsn d)
    {
        int s = d.Size;
        if (d.Op0IsMem || d.Op1IsMem)
        {
            int reg = d.Op0IsMem ? d.R1 : d.R0;
            uint ea = c.Ea(ref d);
            uint m = c.ReadForWrite(d.MemSeg, ea, s);
            if (c.Faulted) return;
            c.Write(d.MemSeg, ea, s, c.GetReg(reg, s));
            if (c.Faulted) return;
            c.SetReg(reg, s, m);
            return;
        }
        uint a = c.GetReg(d.R0, s), b = c.GetReg(d.R1, s);
        c.SetReg(d.R0, s, b);
        c.SetReg(d.R1, s, a);
    }

    private static void Nop(X86Cpu c, ref DecodedInsn d) { }
}
