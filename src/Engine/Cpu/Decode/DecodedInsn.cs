using System.Runtime.InteropServices;
using Iced.Intel;

namespace Replayvisor.Engine.Cpu.Decode;

/// <summary>
/// One instruction decoded once (at block-build time) into what its handler needs: the handler
/// pointer, operand registers, the memory operand's parts, immediates and sizes.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct DecodedInsn
{
    public delegate*<X86Cpu, ref DecodedInsn, void> Exec;
    public uint Eip;
    public uint NextEip;
    public uint Disp;
    public uint Imm;
    /// <summary>Second immediate: far-pointer selector, enter's nesting level.</summary>
    public uint Imm2;
    public byte Length;
    /// <summary>Operand size in bytes (1, 2 or 4) of the instruction's main operation.</summary>
    public byte Size;
    /// <summary>Address size in bytes (2 or 4).</summary>
    public byte AddrSize;
    /// <summary>Segment of the memory operand (prefix or default), a <see cref="Seg"/> index.</summary>
    public byte MemSeg;
    public byte Base;
    public byte Index;
    public byte Scale;
    /// <summary>Register index of operand 0 and operand 1 (0-7 in encoding order; 0xFF when not a register).</summary>
    public byte R0;
    public byte R1;
    /// <summary>Bit 0: operand 0 is memory; bit 1: operand 1 is memory.</summary>
    public byte MemOps;
    /// <summary>Condition code (Jcc/SETcc/CMOVcc) or the sub-operation selector of a family handler.</summary>
    public byte Cc;
    /// <summary>0 none, 1 rep/repe, 2 repne.</summary>
    public byte Rep;
    public byte Lock;
    /// <summary>The Iced instruction, for rarely executed handlers and disassembly.</summary>
    public Instruction Insn;

    public const byte NoReg = 0xFF;

    public readonly bool Op0IsMem => (MemOps & 1) != 0;
    public readonly bool Op1IsMem => (MemOps & 2) != 0;
}
