using Replayvisor.Engine.Cpu.Decode;

namespace Replayvisor.Engine.Cpu.Compiled;

/// <summary>
/// What a region's translated instructions use, found in one pass over its members (each
/// instruction classified once): the registers they read or write (in locals at every member's
/// start), those they may write (stored at the exits), the segments they access (their bounds in
/// locals, EmitMemory.cs), and whether any of them records lazy flags. A register outside
/// <see cref="Used"/> that the emitter touches after all is loaded where it is first used (as after
/// a handler), so the sets save loads but decide nothing about correctness.
/// </summary>
internal readonly record struct RegionUse(int Used, int Written, int Segments, bool SetsFlags);

internal sealed partial class BlockEmitter
{
    public static RegionUse Scan(Block[] members)
    {
        int used = 0, written = 0, segs = 0;
        bool setsFlags = false;
        foreach (var b in members)
            for (int i = 0; i < b.Count; i++)
            {
                ref DecodedInsn d = ref b.Insns[i];
                Form f = Classify(ref d, i == b.Count - 1);
                if (f == Form.Handler) continue;
                // The forms listed leave the lazy flags alone; any other form counts as setting them (SetFlags).
                setsFlags |= f is not (Form.Nop or Form.Mov or Form.MovExtend or Form.Lea or Form.Not or Form.Xchg or Form.Setcc
                    or Form.Cmovcc or Form.Push or Form.Pop or Form.Leave or Form.Jmp or Form.Jcc or Form.Call or Form.Ret
                    or Form.JmpIndirect or Form.CallIndirect);
                int w = RegBit(d.R0, d.Size) | RegBit(d.R1, d.Size);
                if (IsStackForm(f)) w |= 1 << Reg.ESP;
                if (f == Form.Mul1) w |= 1 << Reg.EAX | 1 << Reg.EDX;
                if (f == Form.Leave) w |= 1 << Reg.EBP;
                written |= w;
                used |= w | RegBit(d.Base, 4) | RegBit(d.Index, 4);
                if (f == Form.Leave) used |= 1 << Reg.ESP;
                if (f == Form.Shift) used |= 1 << Reg.ECX;
                if (f is Form.Lea or Form.Nop) continue;
                if (d.MemOps != 0) segs |= 1 << d.MemSeg;
                if (IsStackForm(f)) segs |= 1 << Seg.SS;
            }
        return new RegionUse(used, written, segs, setsFlags);
    }
}
