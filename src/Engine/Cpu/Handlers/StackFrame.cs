using Iced.Intel;
using Replayvisor.Engine.Cpu.Decode;

namespace Replayvisor.Engine.Cpu.Handlers;

/// <summary>
/// enter, leave, pusha/pushad, popa/popad, pushf/pushfd, popf/popfd (SDM vol. 2). Multi-part stack
/// operations read everything and probe every store before changing any state, so a fault leaves
/// registers and memory as they were.
/// </summary>
internal static unsafe class StackFrame
{
    public static delegate*<X86Cpu, ref DecodedInsn, void> Select(ref DecodedInsn d)
    {
        switch (d.Insn.Mnemonic)
        {
            case Mnemonic.Enter: return &Enter;
            case Mnemonic.Leave: return &Leave;
            case Mnemonic.Pusha: case Mnemonic.Pushad: return &Pusha;
            case Mnemonic.Popa: case Mnemonic.Popad: return &Popa;
            case Mnemonic.Pushf: case Mnemonic.Pushfd: return &Pushf;
            case Mnemonic.Popf: case Mnemonic.Popfd: return &Popf;
            default: return null;
        }
    }

    private static uint StackMask(X86Cpu c) => c.Stack32 ? 0xFFFFFFFF : 0xFFFF;

    private static void SetSp(X86Cpu c, uint sp) => c.AdjustStack(sp - c.StackPointer);

    /// <summary>enter imm16, imm8: the nesting level is taken modulo 32 (SDM vol. 2 ENTER).</summary>
    private static void Enter(X86Cpu c, ref DecodedInsn d)
    {
        int os = d.Size;
        uint alloc = d.Imm & 0xFFFF;
        int level = (int)(d.Imm2 & 31);
        uint mask = StackMask(c);
        uint sp = c.StackPointer;
        uint bp = c.Ebp & mask;
        for (int i = 1; i < level; i++)
        {
            bp = (bp - (uint)os) & mask;
            c.Read(Seg.SS, bp, os);
            if (c.Faulted) return;
        }
        int pushes = level == 0 ? 1 : level + 1;
        for (int k = 1; k <= pushes; k++)
            if (!c.ProbeWrite(Seg.SS, (sp - (uint)(k * os)) & mask, os)) return;
        uint frameTemp = (sp - (uint)os) & mask;
        uint finalSp = (sp - (uint)(pushes * os) - alloc) & mask;
        // Like hardware, enter checks that the final stack pointer is writable.
        if (!c.ProbeWrite(Seg.SS, finalSp, os)) return;
        c.Write(Seg.SS, frameTemp, os, c.Ebp);
        // Hardware interleaves each frame-pointer read with its push, so a read may see an
        // earlier push when the areas overlap; the first pass only proved the reads cannot fault.
        bp = c.Ebp & mask;
        for (int i = 1; i < level; i++)
        {
            bp = (bp - (uint)os) & mask;
            c.Write(Seg.SS, (sp - (uint)((i + 1) * os)) & mask, os, c.Read(Seg.SS, bp, os));
        }
        if (level > 0) c.Write(Seg.SS, (sp - (uint)(pushes * os)) & mask, os, frameTemp);
        if (c.Faulted) return;
        c.SetReg(Reg.EBP, os, frameTemp);
        SetSp(c, finalSp);
    }

    private static void Leave(X86Cpu c, ref DecodedInsn d)
    {
        int os = d.Size;
        uint mask = StackMask(c);
        uint bp = c.Ebp & mask;
        uint v = c.Read(Seg.SS, bp, os);
        if (c.Faulted) return;
        SetSp(c, (bp + (uint)os) & mask);
        c.SetReg(Reg.EBP, os, v);
    }

    private static void Pusha(X86Cpu c, ref DecodedInsn d)
    {
        int os = d.Size;
        uint mask = StackMask(c);
        uint sp = c.StackPointer;
        if (!ProbePushaFrame(c, sp, os, mask)) return;
        uint origEsp = c.Esp;
        for (int r = 0; r < 8; r++)
            c.Write(Seg.SS, (sp - (uint)((r + 1) * os)) & mask, os, r == Reg.ESP ? origEsp : c.Gpr[r]);
        if (c.Faulted) return;
        SetSp(c, (sp - (uint)(8 * os)) & mask);
    }

    /// <summary>
    /// Probes pusha's eight slots for writing, highest first (the order of the pushes), raising the
    /// first fault. When the slots are contiguous (no wrap) and on one linear page, the first slot's
    /// probe and one segment check of the whole frame raise exactly what eight probes raise: the
    /// frame is within the segment's limits iff every slot is (the same #SS(0) for any slot), and
    /// every slot translates through the page the first probe translated.
    /// </summary>
    private static bool ProbePushaFrame(X86Cpu c, uint sp, int os, uint mask)
    {
        uint size = (uint)(8 * os);
        uint first = (sp - (uint)os) & mask;
        uint @base = c.Segs[Seg.SS].Base, lowLin = @base + (sp - size), highLin = @base + sp - 1;
        if (sp >= size && lowLin <= highLin && (lowLin >> 12) == (highLin >> 12))
            return c.ProbeWrite(Seg.SS, first, os) && c.CheckSegment(Seg.SS, sp - size, (int)size, true, out _);
        for (int k = 1; k <= 8; k++)
            if (!c.ProbeWrite(Seg.SS, (sp - (uint)(k * os)) & mask, os)) return false;
        return true;
    }

    /// <summary>popa: the stored ESP value is skipped (SDM vol. 2 POPA).</summary>
    private static void Popa(X86Cpu c, ref DecodedInsn d)
    {
        int os = d.Size;
        uint mask = StackMask(c);
        uint sp = c.StackPointer;
        Span<uint> v = stackalloc uint[8];
        for (int r = 0; r < 8; r++)
        {
            if (r == Reg.ESP) continue;
            v[r] = c.Read(Seg.SS, (sp + (uint)((7 - r) * os)) & mask, os);
            if (c.Faulted) return;
        }
        for (int r = 0; r < 8; r++)
            if (r != Reg.ESP) c.SetReg(r, os, v[r]);
        SetSp(c, (sp + (uint)(8 * os)) & mask);
    }

    /// <summary>pushfd stores EFLAGS with VM and RF cleared (SDM vol. 2 PUSHF).</summary>
    private static void Pushf(X86Cpu c, ref DecodedInsn d)
    {
        uint f = c.Eflags;
        c.Push(d.Size == 4 ? f & 0x00FCFFFF : f & 0xFFFF, d.Size);
    }

    /// <summary>
    /// popf in protected mode (SDM vol. 2 POPF): IOPL changes only at CPL 0; IF only when CPL ≤ IOPL;
    /// VM, VIP and VIF are unchanged; the 32-bit form clears RF and may change AC and ID; the 16-bit
    /// form changes bits 0-15 only.
    /// </summary>
    private static void Popf(X86Cpu c, ref DecodedInsn d)
    {
        int os = d.Size;
        uint v = c.Pop(os);
        if (c.Faulted) return;
        uint mask = Fl.CF | Fl.PF | Fl.AF | Fl.ZF | Fl.SF | Fl.TF | Fl.DF | Fl.OF | Fl.NT;
        if (c.Cpl <= c.Iopl) mask |= Fl.IF;
        if (c.Cpl == 0) mask |= Fl.IOPL;
        uint old = c.Eflags;
        uint n;
        if (os == 4)
        {
            mask |= Fl.AC | Fl.ID;
            n = ((old & ~mask) | (v & mask)) & ~Fl.RF;
        }
        else n = (old & ~mask) | (v & mask & 0xFFFF);
        c.Eflags = n;
    }
}
