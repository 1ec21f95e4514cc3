using Iced.Intel;

namespace Replayvisor.Engine.Cpu.Decode;

/// <summary>Turns an Iced instruction into a <see cref="DecodedInsn"/> with its handler chosen.</summary>
public static unsafe class InsnDecoder
{
    public static void Fill(ref DecodedInsn d, in Instruction insn)
    {
        d = default;
        d.Insn = insn;
        d.Eip = insn.IP32;
        d.Length = (byte)insn.Length;
        d.NextEip = insn.IP32 + (uint)insn.Length;
        d.R0 = d.R1 = d.Base = d.Index = DecodedInsn.NoReg;
        d.Rep = insn.HasRepePrefix ? (byte)1 : insn.HasRepnePrefix ? (byte)2 : (byte)0;
        d.Lock = insn.HasLockPrefix ? (byte)1 : (byte)0;
        d.AddrSize = 4;
        d.MemSeg = Seg.DS;
        int opCount = insn.OpCount;
        for (int i = 0; i < opCount && i < 3; i++)
        {
            OpKind k = insn.GetOpKind(i);
            switch (k)
            {
                case OpKind.Register:
                {
                    Register r = insn.GetOpRegister(i);
                    if (i == 0) d.R0 = RegIndex(r); else if (i == 1) d.R1 = RegIndex(r);
                    if (i == 0 && d.Size == 0) d.Size = RegSize(r);
                    break;
                }
                case OpKind.Memory:
                    d.MemOps |= (byte)(1 << i);
                    FillMemory(ref d, insn);
                    if (i == 0 && d.Size == 0) d.Size = (byte)insn.MemorySize.GetSize();
                    break;
                case OpKind.Immediate8: case OpKind.Immediate16: case OpKind.Immediate32:
                case OpKind.Immediate8to16: case OpKind.Immediate8to32:
                    if (i == 2 || (i == 1 && opCount == 3 && insn.GetOpKind(2) is OpKind.Immediate8 or OpKind.Immediate16))
                        d.Imm2 = (uint)insn.GetImmediate(i);
                    else d.Imm = (uint)insn.GetImmediate(i);
                    break;
                case OpKind.Immediate8_2nd:
                    d.Imm2 = insn.Immediate8_2nd;
                    break;
                case OpKind.NearBranch16: d.Imm = insn.NearBranch16; break;
                case OpKind.NearBranch32: d.Imm = insn.NearBranch32; break;
                case OpKind.FarBranch16: d.Imm = insn.FarBranch16; d.Imm2 = insn.FarBranchSelector; break;
                case OpKind.FarBranch32: d.Imm = insn.FarBranch32; d.Imm2 = insn.FarBranchSelector; break;
                case OpKind.MemorySegSI: case OpKind.MemorySegESI: case OpKind.MemorySegDI: case OpKind.MemorySegEDI:
                    d.MemSeg = SegIndex(insn.MemorySegment);
                    d.AddrSize = k is OpKind.MemorySegSI or OpKind.MemorySegDI ? (byte)2 : (byte)4;
                    break;
                case OpKind.MemoryESDI: d.AddrSize = 2; break;
                case OpKind.MemoryESEDI: d.AddrSize = 4; break;
            }
        }
        if (d.Size == 0) d.Size = DefaultSize(insn);
        d.Exec = HandlerTable.Select(ref d);
    }

    private static void FillMemory(ref DecodedInsn d, in Instruction insn)
    {
        d.MemSeg = SegIndex(insn.MemorySegment);
        Register b = insn.MemoryBase, x = insn.MemoryIndex;
        bool a16 = b is >= Register.AX and <= Register.DI || x is >= Register.AX and <= Register.DI
                   || (b == Register.None && x == Register.None && insn.MemoryDisplSize == 2);
        d.AddrSize = a16 ? (byte)2 : (byte)4;
        d.Base = b == Register.None ? DecodedInsn.NoReg : RegIndex(b);
        d.Index = x == Register.None ? DecodedInsn.NoReg : RegIndex(x);
        d.Scale = (byte)(insn.MemoryIndexScale switch { 2 => 1, 4 => 2, 8 => 3, _ => 0 });
        d.Disp = insn.MemoryDisplacement32;
    }

    /// <summary>Operand size when no register or memory operand names it: from the opcode (e.g. push imm, jmp).</summary>
    private static byte DefaultSize(in Instruction insn)
    {
        int os = insn.Code.ToOpCode().OperandSize;
        if (os == 16) return 2;
        if (os == 32) return 4;
        return insn.CodeSize == CodeSize.Code16 ? (byte)2 : (byte)4;
    }

    public static byte RegIndex(Register r)
    {
        if (r is >= Register.EAX and <= Register.EDI) return (byte)(r - Register.EAX);
        if (r is >= Register.AX and <= Register.DI) return (byte)(r - Register.AX);
        if (r is >= Register.AL and <= Register.BH) return (byte)(r - Register.AL);
        if (r is >= Register.ES and <= Register.GS) return (byte)(r - Register.ES);
        if (r is >= Register.CR0 and <= Register.CR15) return (byte)(r - Register.CR0);
        if (r is >= Register.DR0 and <= Register.DR15) return (byte)(r - Register.DR0);
        if (r is >= Register.ST0 and <= Register.ST7) return (byte)(r - Register.ST0);
        if (r is >= Register.XMM0 and <= Register.XMM7) return (byte)(r - Register.XMM0);
        if (r is >= Register.MM0 and <= Register.MM7) return (byte)(r - Register.MM0);
        return DecodedInsn.NoReg;
    }

    private static byte RegSize(Register r)
    {
        if (r is >= Register.EAX and <= Register.EDI) return 4;
        if (r is >= Register.AX and <= Register.DI) return 2;
        if (r is >= Register.AL and <= Register.BH) return 1;
        if (r is >= Register.ES and <= Register.GS) return 2;
        return 4;
    }

    public static byte SegIndex(Register r) => r is >= Register.ES and <= Register.GS ? (byte)(r - Register.ES) : (byte)Seg.DS;
}
