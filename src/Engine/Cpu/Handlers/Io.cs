using Iced.Intel;
using Replayvisor.Engine.Cpu.Decode;

namespace Replayvisor.Engine.Cpu.Handlers;

/// <summary>in, out, cpuid, rdtsc (SDM vol. 2); the I/O permission check of SDM vol. 1 §19.5 is shared with ins/outs.</summary>
internal static unsafe class Io
{
    public static delegate*<X86Cpu, ref DecodedInsn, void> Select(ref DecodedInsn d)
    {
        var insn = d.Insn;
        switch (insn.Mnemonic)
        {
            case Mnemonic.Cpuid: return &Cpuid;
            case Mnemonic.Rdtsc: return &Rdtsc;
            case Mnemonic.In:
                // in acc, imm8 / in acc, dx
                d.Size = (byte)insn.Op0Register.GetSize();
                d.Cc = (byte)(insn.Op1Kind == OpKind.Register ? 1 : 0);
                return &In;
            case Mnemonic.Out:
                d.Size = (byte)insn.Op1Register.GetSize();
                d.Cc = (byte)(insn.Op0Kind == OpKind.Register ? 1 : 0);
                return &Out;
            default:
                return null;
        }
    }

    /// <summary>
    /// True when the current privilege may access size bytes of I/O space at port: CPL ≤ IOPL, or
    /// every bit for the access is clear in the TSS I/O permission bitmap (32-bit TSS, bitmap offset
    /// at TSS+0x66, both bytes read within the TSS limit). Otherwise raises #GP(0) (or a #PF from the
    /// bitmap read) and returns false.
    /// </summary>
    public static bool Allowed(X86Cpu c, uint port, int size)
    {
        if (c.Cpl <= c.Iopl) return true;
        ref SegmentCache tr = ref c.Tr;
        if (!tr.Present || !tr.IsSystem || (tr.Type != 9 && tr.Type != 11) || tr.Limit < 0x67)
        {
            c.RaiseGp(0);
            return false;
        }
        uint bitmap = (uint)c.ReadSystem(tr.Base + 0x66, 2);
        if (c.Faulted) return false;
        uint at = bitmap + (port >> 3);
        if ((ulong)at + 1 > tr.Limit)
        {
            c.RaiseGp(0);
            return false;
        }
        uint bits = (uint)c.ReadSystem(tr.Base + at, 2);
        if (c.Faulted) return false;
        uint need = ((1u << size) - 1) << (int)(port & 7);
        if ((bits & need) != 0)
        {
            c.RaiseGp(0);
            return false;
        }
        return true;
    }

    private static void In(X86Cpu c, ref DecodedInsn d)
    {
        uint port = d.Cc != 0 ? c.Edx & 0xFFFF : d.Imm & 0xFF;
        if (!Allowed(c, port, d.Size)) return;
        uint v = c.Host.PortIn(c, (ushort)port, d.Size);
        c.SetReg(Reg.EAX, d.Size, v);
    }

    private static void Out(X86Cpu c, ref DecodedInsn d)
    {
        uint port = d.Cc != 0 ? c.Edx & 0xFFFF : d.Imm & 0xFF;
        if (!Allowed(c, port, d.Size)) return;
        c.Host.PortOut(c, (ushort)port, d.Size, c.GetReg(Reg.EAX, d.Size));
    }

    private static void Cpuid(X86Cpu c, ref DecodedInsn d)
    {
        c.Host.Cpuid(c, c.Eax, c.Ecx, out uint a, out uint b, out uint cx, out uint dx);
        c.Eax = a; c.Ebx = b; c.Ecx = cx; c.Edx = dx;
    }

    /// <summary>rdtsc: #GP(0) when CR4.TSD is set and CPL &gt; 0 (SDM vol. 2 RDTSC).</summary>
    private static void Rdtsc(X86Cpu c, ref DecodedInsn d)
    {
        if ((c.Cr4 & Cr4Bits.TSD) != 0 && c.Cpl > 0) { c.RaiseGp(0); return; }
        ulong t = c.Host.ReadTsc(c);
        c.Eax = (uint)t;
        c.Edx = (uint)(t >> 32);
    }
}
