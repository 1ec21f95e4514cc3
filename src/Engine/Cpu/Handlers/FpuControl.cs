using Iced.Intel;
using Replayvisor.Engine.Cpu.Decode;

namespace Replayvisor.Engine.Cpu.Handlers;

/// <summary>
/// x87/SSE state movement only (the rest stops the machine as unsupported): fninit, fnstcw, fldcw,
/// fnstsw, fnclex, fwait, fnstenv/fldenv (28-byte), fnsave/frstor (108-byte), fxsave/fxrstor
/// (SDM vol. 1 §8.1.10 figure 8-9, table 10-2; vol. 2 for each instruction). The waiting forms
/// (finit, fstcw, ...) are the same operations after fwait's checks.
/// <para>Choices for implementation-dependent details (deterministic): reserved bits of the control
/// word read as 0 except bit 6, which reads as 1; the reserved upper halves of the 32-bit
/// environment fields are stored as 0xFFFF; full tag words are derived from register contents on
/// every store (valid/zero/special) and only empty/non-empty is kept on load, as the processor
/// keeps an abridged tag; fxsave writes bytes 0-287 (reserved bytes as 0) and leaves 288-511;
/// with CR4.OSFXSR clear fxsave/fxrstor skip the XMM registers (MXCSR is still saved);
/// MXCSR_MASK is 0x0000FFFF. No x87 arithmetic runs, so no unmasked exception is ever
/// pending and fwait never raises #MF.</para>
/// </summary>
internal static unsafe class FpuControl
{
    public const uint MxcsrMask = 0xFFFF;

    public static delegate*<X86Cpu, ref DecodedInsn, void> Select(ref DecodedInsn d)
    {
        var insn = d.Insn;
        switch (insn.Mnemonic)
        {
            case Mnemonic.Fninit: case Mnemonic.Finit: return &Fninit;
            case Mnemonic.Fnstcw: case Mnemonic.Fstcw: return &Fnstcw;
            case Mnemonic.Fldcw: return &Fldcw;
            case Mnemonic.Fnstsw: case Mnemonic.Fstsw: return d.Op0IsMem ? &FnstswM : &FnstswAx;
            case Mnemonic.Fnclex: case Mnemonic.Fclex: return &Fnclex;
            case Mnemonic.Wait: return &Fwait;
            case Mnemonic.Fnstenv: case Mnemonic.Fstenv:
                return insn.MemorySize == MemorySize.FpuEnv28 ? &Fnstenv : null;
            case Mnemonic.Fldenv:
                return insn.MemorySize == MemorySize.FpuEnv28 ? &Fldenv : null;
            case Mnemonic.Fnsave: case Mnemonic.Fsave:
                return insn.MemorySize == MemorySize.FpuState108 ? &Fnsave : null;
            case Mnemonic.Frstor:
                return insn.MemorySize == MemorySize.FpuState108 ? &Frstor : null;
            case Mnemonic.Fxsave: return d.Op0IsMem ? &Fxsave : null;
            case Mnemonic.Fxrstor: return d.Op0IsMem ? &Fxrstor : null;
            default: return null;
        }
    }

    /// <summary>#NM when CR0.EM or CR0.TS is set (SDM vol. 3 §2.5, table 2-2).</summary>
    private static bool Available(X86Cpu c)
    {
        if ((c.Cr0 & (Cr0Bits.EM | Cr0Bits.TS)) != 0) { c.RaiseFault(Vectors.NM, 0); return false; }
        return true;
    }

    private static ushort NormalizeCw(uint v) => (ushort)((v & ~0xE0C0u) | 0x40);

    private static void Fninit(X86Cpu c, ref DecodedInsn d)
    {
        if (Available(c)) c.Fpu.Init();
    }

    private static void Fnstcw(X86Cpu c, ref DecodedInsn d)
    {
        if (!Available(c)) return;
        c.Write16(d.MemSeg, c.Ea(ref d), c.Fpu.Fcw);
    }

    private static void Fldcw(X86Cpu c, ref DecodedInsn d)
    {
        if (!Available(c)) return;
        ushort v = c.Read16(d.MemSeg, c.Ea(ref d));
        if (c.Faulted) return;
        c.Fpu.Fcw = NormalizeCw(v);
    }

    private static void FnstswAx(X86Cpu c, ref DecodedInsn d)
    {
        if (Available(c)) c.SetReg(Reg.EAX, 2, c.Fpu.Fsw);
    }

    private static void FnstswM(X86Cpu c, ref DecodedInsn d)
    {
        if (!Available(c)) return;
        c.Write16(d.MemSeg, c.Ea(ref d), c.Fpu.Fsw);
    }

    /// <summary>Clears PE, UE, OE, ZE, DE, IE, SF, ES and B.</summary>
    private static void Fnclex(X86Cpu c, ref DecodedInsn d)
    {
        if (Available(c)) c.Fpu.Fsw &= 0x7F00;
    }

    /// <summary>fwait: #NM only when both CR0.TS and CR0.MP are set (SDM vol. 3 table 2-2).</summary>
    private static void Fwait(X86Cpu c, ref DecodedInsn d)
    {
        if ((c.Cr0 & (Cr0Bits.TS | Cr0Bits.MP)) == (Cr0Bits.TS | Cr0Bits.MP)) c.RaiseFault(Vectors.NM, 0);
    }

    private static int Top(FpuState f) => (f.Fsw >> 11) & 7;

    /// <summary>The 2-bit tag of physical register i derived from its contents (SDM vol. 1 §8.1.7); 3 when empty.</summary>
    private static int TagOf(FpuState f, int i)
    {
        if (((f.Ftw >> (2 * i)) & 3) == 3) return 3;
        int o = i * 10;
        int exp = (f.St[o + 8] | (f.St[o + 9] << 8)) & 0x7FFF;
        ulong mant = BitConverter.ToUInt64(f.St, o);
        if (exp == 0x7FFF) return 2;
        if (exp == 0) return mant == 0 ? 1 : 2;
        return (mant >> 63) == 0 ? 2 : 0;
    }

    private static ushort FullTag(FpuState f)
    {
        int t = 0;
        for (int i = 0; i < 8; i++) t |= TagOf(f, i) << (2 * i);
        return (ushort)t;
    }

    /// <summary>Keeps only empty (3) or non-empty (0) per register, as loaded from a full tag word.</summary>
    private static ushort LoadTag(uint t)
    {
        int r = 0;
        for (int i = 0; i < 8; i++) if (((t >> (2 * i)) & 3) == 3) r |= 3 << (2 * i);
        return (ushort)r;
    }

    /// <summary>The 28-byte protected-mode 32-bit environment (SDM vol. 1 figure 8-9).</summary>
    private static void BuildEnv(FpuState f, Span<byte> b)
    {
        Put32(b, 0, 0xFFFF0000u | f.Fcw);
        Put32(b, 4, 0xFFFF0000u | f.Fsw);
        Put32(b, 8, 0xFFFF0000u | FullTag(f));
        Put32(b, 12, f.Fip);
        Put32(b, 16, f.Fcs | ((uint)(f.Fop & 0x7FF) << 16));
        Put32(b, 20, f.Fdp);
        Put32(b, 24, 0xFFFF0000u | f.Fds);
    }

    private static void LoadEnv(FpuState f, ReadOnlySpan<byte> b)
    {
        f.Fcw = NormalizeCw(Get32(b, 0));
        f.Fsw = (ushort)Get32(b, 4);
        f.Ftw = LoadTag(Get32(b, 8));
        f.Fip = Get32(b, 12);
        uint cs = Get32(b, 16);
        f.Fcs = (ushort)cs;
        f.Fop = (ushort)((cs >> 16) & 0x7FF);
        f.Fdp = Get32(b, 20);
        f.Fds = (ushort)Get32(b, 24);
    }

    private static void Put32(Span<byte> b, int o, uint v) => System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(b.Slice(o), v);
    private static uint Get32(ReadOnlySpan<byte> b, int o) => System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(b.Slice(o));

    /// <summary>Stores a buffer after probing the whole range, so nothing is written when any part faults.</summary>
    private static bool Store(X86Cpu c, int seg, uint ea, ReadOnlySpan<byte> b, uint amask)
    {
        if (!c.ProbeWrite(seg, ea, b.Length)) return false;
        for (int i = 0; i < b.Length; i += 4) c.Write32(seg, (ea + (uint)i) & amask, Get32(b, i));
        return !c.Faulted;
    }

    private static bool Load(X86Cpu c, int seg, uint ea, Span<byte> b, uint amask)
    {
        for (int i = 0; i < b.Length; i += 4)
        {
            uint v = c.Read32(seg, (ea + (uint)i) & amask);
            if (c.Faulted) return false;
            Put32(b, i, v);
        }
        return true;
    }

    private static uint AddrMask(ref DecodedInsn d) => d.AddrSize == 4 ? 0xFFFFFFFF : 0xFFFF;

    /// <summary>fnstenv stores the environment, then masks all x87 exceptions.</summary>
    private static void Fnstenv(X86Cpu c, ref DecodedInsn d)
    {
        if (!Available(c)) return;
        Span<byte> b = stackalloc byte[28];
        BuildEnv(c.Fpu, b);
        if (!Store(c, d.MemSeg, c.Ea(ref d), b, AddrMask(ref d))) return;
        c.Fpu.Fcw |= 0x3F;
    }

    private static void Fldenv(X86Cpu c, ref DecodedInsn d)
    {
        if (!Available(c)) return;
        Span<byte> b = stackalloc byte[28];
        if (!Load(c, d.MemSeg, c.Ea(ref d), b, AddrMask(ref d))) return;
        LoadEnv(c.Fpu, b);
    }

    /// <summary>fnsave: environment plus ST0-ST7 in stack order (108 bytes), then fninit.</summary>
    private static void Fnsave(X86Cpu c, ref DecodedInsn d)
    {
        if (!Available(c)) return;
        var f = c.Fpu;
        Span<byte> b = stackalloc byte[108];
        BuildEnv(f, b);
        int top = Top(f);
        for (int i = 0; i < 8; i++) f.St.AsSpan(((top + i) & 7) * 10, 10).CopyTo(b.Slice(28 + i * 10));
        if (!Store(c, d.MemSeg, c.Ea(ref d), b, AddrMask(ref d))) return;
        f.Init();
    }

    private static void Frstor(X86Cpu c, ref DecodedInsn d)
    {
        if (!Available(c)) return;
        Span<byte> b = stackalloc byte[108];
        if (!Load(c, d.MemSeg, c.Ea(ref d), b, AddrMask(ref d))) return;
        var f = c.Fpu;
        LoadEnv(f, b);
        int top = Top(f);
        for (int i = 0; i < 8; i++) b.Slice(28 + i * 10, 10).CopyTo(f.St.AsSpan(((top + i) & 7) * 10, 10));
    }

    /// <summary>fxsave (SDM vol. 1 table 10-2, 32-bit layout); #GP(0) unless 16-byte aligned.</summary>
    private static void Fxsave(X86Cpu c, ref DecodedInsn d)
    {
        if (!Available(c)) return;
        uint ea = c.Ea(ref d);
        if ((ea & 15) != 0) { c.RaiseGp(0); return; }
        var f = c.Fpu;
        bool xmm = (c.Cr4 & Cr4Bits.OSFXSR) != 0;
        Span<byte> b = stackalloc byte[288];
        b.Clear();
        b[0] = (byte)f.Fcw; b[1] = (byte)(f.Fcw >> 8);
        b[2] = (byte)f.Fsw; b[3] = (byte)(f.Fsw >> 8);
        int abridged = 0;
        for (int i = 0; i < 8; i++) if (((f.Ftw >> (2 * i)) & 3) != 3) abridged |= 1 << i;
        b[4] = (byte)abridged;
        b[6] = (byte)f.Fop; b[7] = (byte)((f.Fop >> 8) & 7);
        Put32(b, 8, f.Fip);
        Put32(b, 12, f.Fcs);
        Put32(b, 16, f.Fdp);
        Put32(b, 20, f.Fds);
        Put32(b, 24, f.Mxcsr);
        Put32(b, 28, MxcsrMask);
        int top = Top(f);
        for (int i = 0; i < 8; i++) f.St.AsSpan(((top + i) & 7) * 10, 10).CopyTo(b.Slice(32 + i * 16));
        if (xmm) f.Xmm.AsSpan().CopyTo(b.Slice(160));
        Store(c, d.MemSeg, ea, xmm ? b : b.Slice(0, 160), AddrMask(ref d));
    }

    /// <summary>fxrstor; #GP(0) when unaligned or when MXCSR sets a reserved bit.</summary>
    private static void Fxrstor(X86Cpu c, ref DecodedInsn d)
    {
        if (!Available(c)) return;
        uint ea = c.Ea(ref d);
        if ((ea & 15) != 0) { c.RaiseGp(0); return; }
        bool xmm = (c.Cr4 & Cr4Bits.OSFXSR) != 0;
        Span<byte> b = stackalloc byte[288];
        if (!Load(c, d.MemSeg, ea, xmm ? b : b.Slice(0, 160), AddrMask(ref d))) return;
        if ((Get32(b, 24) & ~MxcsrMask) != 0) { c.RaiseGp(0); return; }
        LoadFxImage(c.Fpu, b, xmm);
    }

    /// <summary>What fxrstor loads from a checked image (bytes 0-159, and the XMM registers at 160-287 when <paramref name="xmm"/>).</summary>
    public static void LoadFxImage(FpuState f, ReadOnlySpan<byte> b, bool xmm)
    {
        uint mxcsr = Get32(b, 24);
        f.Fcw = NormalizeCw((uint)(b[0] | (b[1] << 8)));
        f.Fsw = (ushort)(b[2] | (b[3] << 8));
        f.Fop = (ushort)((b[6] | (b[7] << 8)) & 0x7FF);
        f.Fip = Get32(b, 8);
        f.Fcs = (ushort)Get32(b, 12);
        f.Fdp = Get32(b, 16);
        f.Fds = (ushort)Get32(b, 20);
        f.Mxcsr = mxcsr;
        int top = Top(f);
        for (int i = 0; i < 8; i++) b.Slice(32 + i * 16, 10).CopyTo(f.St.AsSpan(((top + i) & 7) * 10, 10));
        int tag = 0;
        for (int i = 0; i < 8; i++) if ((b[4] & (1 << i)) == 0) tag |= 3 << (2 * i);
        f.Ftw = (ushort)tag;
        if (xmm) b.Slice(160, 128).CopyTo(f.Xmm);
    }
}
