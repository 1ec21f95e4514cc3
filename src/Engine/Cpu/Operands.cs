using System.Runtime.CompilerServices;
using Replayvisor.Engine.Cpu.Decode;

namespace Replayvisor.Engine.Cpu;

/// <summary>Register and operand access shared by all instruction handlers.</summary>
public sealed partial class X86Cpu
{
    /// <summary>Reads register r (encoding order) at the given size; 8-bit 4-7 are AH, CH, DH, BH.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint GetReg(int r, int size)
    {
        if (size == 4) return Gpr[r];
        if (size == 2) return Gpr[r] & 0xFFFF;
        return r < 4 ? Gpr[r] & 0xFF : (Gpr[r - 4] >> 8) & 0xFF;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void SetReg(int r, int size, uint v)
    {
        if (size == 4) Gpr[r] = v;
        else if (size == 2) Gpr[r] = (Gpr[r] & 0xFFFF0000) | (v & 0xFFFF);
        else if (r < 4) Gpr[r] = (Gpr[r] & 0xFFFFFF00) | (v & 0xFF);
        else Gpr[r - 4] = (Gpr[r - 4] & 0xFFFF00FF) | ((v & 0xFF) << 8);
    }

    /// <summary>Effective address of the memory operand (16-bit forms wrap at 64 KiB, SDM vol. 1 §3.7.5).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint Ea(ref DecodedInsn d)
    {
        uint a = d.Disp;
        if (d.Base != DecodedInsn.NoReg) a += Gpr[d.Base];
        if (d.Index != DecodedInsn.NoReg) a += Gpr[d.Index] << d.Scale;
        return d.AddrSize == 4 ? a : a & 0xFFFF;
    }

    /// <summary>Reads operand 0 (register or memory) at the instruction's operand size.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint ReadOp0(ref DecodedInsn d) => d.Op0IsMem ? Read(d.MemSeg, Ea(ref d), d.Size) : GetReg(d.R0, d.Size);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WriteOp0(ref DecodedInsn d, uint v)
    {
        if (d.Op0IsMem) Write(d.MemSeg, Ea(ref d), d.Size, v);
        else SetReg(d.R0, d.Size, v);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint ReadOp1(ref DecodedInsn d) => d.Op1IsMem ? Read(d.MemSeg, Ea(ref d), d.Size) : GetReg(d.R1, d.Size);

    /// <summary>Stack pointer width follows SS.B (SDM vol. 3 §3.4.5).</summary>
    public bool Stack32 => Segs[Seg.SS].Big;

    public uint StackPointer => Stack32 ? Gpr[Reg.ESP] : Gpr[Reg.ESP] & 0xFFFF;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void SetStackPointer(uint v)
    {
        if (Stack32) Gpr[Reg.ESP] = v;
        else Gpr[Reg.ESP] = (Gpr[Reg.ESP] & 0xFFFF0000) | (v & 0xFFFF);
    }

    /// <summary>Pushes a value of 2 or 4 bytes; ESP changes only if the store succeeds.</summary>
    public void Push(uint v, int size)
    {
        uint sp = (StackPointer - (uint)size) & (Stack32 ? 0xFFFFFFFF : 0xFFFF);
        if (size == 4) Write32(Seg.SS, sp, v); else Write16(Seg.SS, sp, (ushort)v);
        if (!Faulted) SetStackPointer(sp);
    }

    /// <summary><see cref="Push"/> of 4 bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Push32(uint v)
    {
        if (!Segs[Seg.SS].Big) { Push(v, 4); return; }
        uint sp = Gpr[Reg.ESP] - 4;
        Write32(Seg.SS, sp, v);
        if (!Faulted) Gpr[Reg.ESP] = sp;
    }

    /// <summary><see cref="Pop"/> of 4 bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint Pop32()
    {
        if (!Segs[Seg.SS].Big) return Pop(4);
        uint sp = Gpr[Reg.ESP];
        uint v = Read32(Seg.SS, sp);
        if (!Faulted) Gpr[Reg.ESP] = sp + 4;
        return v;
    }

    /// <summary>Reads the value at the top of the stack without popping.</summary>
    public uint PeekStack(int size, uint offset = 0)
    {
        uint sp = (StackPointer + offset) & (Stack32 ? 0xFFFFFFFF : 0xFFFF);
        return size == 4 ? Read32(Seg.SS, sp) : Read16(Seg.SS, sp);
    }

    /// <summary>Pops a value of 2 or 4 bytes; ESP changes only if the load succeeds.</summary>
    public uint Pop(int size)
    {
        uint v = PeekStack(size);
        if (!Faulted) SetStackPointer(StackPointer + (uint)size);
        return v;
    }

    /// <summary>Adds to the stack pointer at the stack's width.</summary>
    public void AdjustStack(uint delta) => SetStackPointer(StackPointer + delta);
}
