using Iced.Intel;
using Replayvisor.Engine.Cpu.Decode;

namespace Replayvisor.Engine.Cpu.Handlers;

/// <summary>
/// cmpxchg, cmpxchg8b, xadd (SDM vol. 2). One logical processor, so lock is only a decode check.
/// The destination is written whether or not the comparison succeeds (the old value is written back
/// on failure), so a read-only destination faults in both cases as on hardware.
/// </summary>
internal static unsafe class Atomic
{
    public static delegate*<X86Cpu, ref DecodedInsn, void> Select(ref DecodedInsn d)
    {
        switch (d.Insn.Mnemonic)
        {
            case Mnemonic.Cmpxchg:
                if (d.Lock != 0 && !d.Op0IsMem) return &Misc.Ud;
                return &Cmpxchg;
            case Mnemonic.Cmpxchg8b:
                if (!d.Op0IsMem) return &Misc.Ud;
                return &Cmpxchg8b;
            case Mnemonic.Xadd:
                if (d.Lock != 0 && !d.Op0IsMem) return &Misc.Ud;
                return &Xadd;
            default:
                return null;
        }
    }

    private static void Cmpxchg(X86Cpu c, ref DecodedInsn d)
    {
        int s = d.Size;
        uint ea = d.Op0IsMem ? c.Ea(ref d) : 0;
        uint dest = d.Op0IsMem ? c.ReadForWrite(d.MemSeg, ea, s) : c.GetReg(d.R0, s);
        if (c.Faulted) return;
        uint acc = c.GetReg(Reg.EAX, s);
        bool eq = acc == dest;
        uint store = eq ? c.GetReg(d.R1, s) : dest;
        if (d.Op0IsMem)
        {
            c.Write(d.MemSeg, ea, s, store);
            if (c.Faulted) return;
        }
        else c.SetReg(d.R0, s, store);
        if (!eq) c.SetReg(Reg.EAX, s, dest);
        c.SetCc(CcOp.Sub, s, acc - dest, acc, dest);
    }

    private static void Cmpxchg8b(X86Cpu c, ref DecodedInsn d)
    {
        uint ea = c.Ea(ref d);
        ulong m = c.Read64(d.MemSeg, ea);
        if (c.Faulted) return;
        ulong cmp = ((ulong)c.Edx << 32) | c.Eax;
        bool eq = m == cmp;
        c.Write64(d.MemSeg, ea, eq ? ((ulong)c.Ecx << 32) | c.Ebx : m);
        if (c.Faulted) return;
        if (!eq) { c.Eax = (uint)m; c.Edx = (uint)(m >> 32); }
        c.SetArith(Fl.ZF, eq ? Fl.ZF : 0);
    }

    private static void Xadd(X86Cpu c, ref DecodedInsn d)
    {
        int s = d.Size;
        uint src = c.GetReg(d.R1, s);
        if (d.Op0IsMem)
        {
            uint ea = c.Ea(ref d);
            uint dest = c.ReadForWrite(d.MemSeg, ea, s);
            if (c.Faulted) return;
            uint sum = dest + src;
            c.Write(d.MemSeg, ea, s, sum);
            if (c.Faulted) return;
            c.SetReg(d.R1, s, dest);
            c.SetCc(CcOp.Add, s, sum, dest, src);
        }
        else
        {
            uint dest = c.GetReg(d.R0, s);
            uint sum = dest + src;
            c.SetReg(d.R1, s, dest);
            c.SetReg(d.R0, s, sum);
            c.SetCc(CcOp.Add, s, sum, dest, src);
        }
    }
}
