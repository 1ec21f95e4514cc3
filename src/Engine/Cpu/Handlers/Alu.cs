using System.Runtime.CompilerServices;
using Iced.Intel;
using Replayvisor.Engine.Cpu.Decode;

namespace Replayvisor.Engine.Cpu.Handlers;

/// <summary>A two-operand ALU operation; Apply computes the result and records lazy flags.</summary>
internal interface IAluOp
{
    static abstract uint Apply(X86Cpu c, uint a, uint b, int size);
    /// <summary>False for cmp and test, which only set flags.</summary>
    static abstract bool Writes { get; }
}

internal struct AddOp : IAluOp
{
    public static bool Writes => true;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Apply(X86Cpu c, uint a, uint b, int size) { uint r = a + b; c.SetCc(CcOp.Add, size, r, a, b); return r; }
}

internal struct OrOp : IAluOp
{
    public static bool Writes => true;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Apply(X86Cpu c, uint a, uint b, int size) { uint r = a | b; c.SetCc(CcOp.Logic, size, r, 0, 0); return r; }
}

internal struct AdcOp : IAluOp
{
    public static bool Writes => true;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Apply(X86Cpu c, uint a, uint b, int size)
    {
        uint cin = c.CF ? 1u : 0u;
        uint r = a + b + cin;
        c.SetCcCarry(CcOp.Adc, size, r, a, b, cin);
        return r;
    }
}

internal struct SbbOp : IAluOp
{
    public static bool Writes => true;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Apply(X86Cpu c, uint a, uint b, int size)
    {
        uint cin = c.CF ? 1u : 0u;
        uint r = a - b - cin;
        c.SetCcCarry(CcOp.Sbb, size, r, a, b, cin);
        return r;
    }
}

internal struct AndOp : IAluOp
{
    public static bool Writes => true;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Apply(X86Cpu c, uint a, uint b, int size) { uint r = a & b; c.SetCc(CcOp.Logic, size, r, 0, 0); return r; }
}

internal struct SubOp : IAluOp
{
    public static bool Writes => true;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Apply(X86Cpu c, uint a, uint b, int size) { uint r = a - b; c.SetCc(CcOp.Sub, size, r, a, b); return r; }
}

internal struct XorOp : IAluOp
{
    public static bool Writes => true;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Apply(X86Cpu c, uint a, uint b, int size) { uint r = a ^ b; c.SetCc(CcOp.Logic, size, r, 0, 0); return r; }
}

internal struct CmpOp : IAluOp
{
    public static bool Writes => false;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Apply(X86Cpu c, uint a, uint b, int size) { c.SetCc(CcOp.Sub, size, a - b, a, b); return 0; }
}

internal struct TestOp : IAluOp
{
    public static bool Writes => false;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Apply(X86Cpu c, uint a, uint b, int size) { c.SetCc(CcOp.Logic, size, a & b, 0, 0); return 0; }
}

/// <summary>
/// add/or/adc/sbb/and/sub/xor/cmp/test, inc/dec/neg/not (SDM vol. 2). Each operation is
/// specialised per operand form (register, memory, immediate) at decode time so the hot forms
/// compile to straight-line code.
/// </summary>
internal static unsafe class Alu
{
    public static delegate*<X86Cpu, ref DecodedInsn, void> Select(ref DecodedInsn d)
    {
        switch (d.Insn.Mnemonic)
        {
            case Mnemonic.Add: return Form<AddOp>(ref d);
            case Mnemonic.Or: return Form<OrOp>(ref d);
            case Mnemonic.Adc: return Form<AdcOp>(ref d);
            case Mnemonic.Sbb: return Form<SbbOp>(ref d);
            case Mnemonic.And: return Form<AndOp>(ref d);
            case Mnemonic.Sub: return Form<SubOp>(ref d);
            case Mnemonic.Xor: return Form<XorOp>(ref d);
            case Mnemonic.Cmp: return Form<CmpOp>(ref d);
            case Mnemonic.Test: return Form<TestOp>(ref d);
            case Mnemonic.Inc: return d.Op0IsMem ? &Inc : d.Size == 4 ? &Inc32R : &Inc;
            case Mnemonic.Dec: return d.Op0IsMem ? &Dec : d.Size == 4 ? &Dec32R : &Dec;
            case Mnemonic.Neg: return &Neg;
            case Mnemonic.Not: return &Not;
            default: return null;
        }
    }

    private static delegate*<X86Cpu, ref DecodedInsn, void> Form<T>(ref DecodedInsn d) where T : struct, IAluOp
    {
        bool imm = d.Insn.OpCount == 2 && d.Insn.GetOpKind(1) != OpKind.Register && d.Insn.GetOpKind(1) != OpKind.Memory;
        if (d.Lock != 0 && !d.Op0IsMem) return &X86CpuUd;
        if (d.Op0IsMem) return imm ? &MI<T> : &MR<T>;
        if (d.Op1IsMem) return &RM<T>;
        return imm ? &RI<T> : &RR<T>;
    }

    private static void X86CpuUd(X86Cpu c, ref DecodedInsn d) => c.RaiseUd();

    private static void RR<T>(X86Cpu c, ref DecodedInsn d) where T : struct, IAluOp
    {
        int s = d.Size;
        if (s == 4)
        {
            uint r = T.Apply(c, c.Gpr[d.R0], c.Gpr[d.R1], 4);
            if (T.Writes) c.Gpr[d.R0] = r;
            return;
        }
        uint v = T.Apply(c, c.GetReg(d.R0, s), c.GetReg(d.R1, s), s);
        if (T.Writes) c.SetReg(d.R0, s, v);
    }

    private static void RI<T>(X86Cpu c, ref DecodedInsn d) where T : struct, IAluOp
    {
        int s = d.Size;
        if (s == 4)
        {
            uint r = T.Apply(c, c.Gpr[d.R0], d.Imm, 4);
            if (T.Writes) c.Gpr[d.R0] = r;
            return;
        }
        uint v = T.Apply(c, c.GetReg(d.R0, s), d.Imm & X86Cpu.SizeMask(s), s);
        if (T.Writes) c.SetReg(d.R0, s, v);
    }

    private static void RM<T>(X86Cpu c, ref DecodedInsn d) where T : struct, IAluOp
    {
        int s = d.Size;
        uint b = c.Read(d.MemSeg, c.Ea(ref d), s);
        if (c.Faulted) return;
        uint v = T.Apply(c, c.GetReg(d.R0, s), b, s);
        if (T.Writes) c.SetReg(d.R0, s, v);
    }

    private static void MR<T>(X86Cpu c, ref DecodedInsn d) where T : struct, IAluOp
    {
        int s = d.Size;
        uint ea = c.Ea(ref d);
        if (T.Writes)
        {
            ref byte p = ref c.RmwRef(d.MemSeg, ea, s);
            if (!Unsafe.IsNullRef(ref p))
            {
                X86Cpu.StoreRef(ref p, s, T.Apply(c, X86Cpu.LoadRef(ref p, s), c.GetReg(d.R1, s), s));
                return;
            }
        }
        uint a = T.Writes ? c.ReadForWrite(d.MemSeg, ea, s) : c.Read(d.MemSeg, ea, s);
        if (c.Faulted) return;
        MemWriteBack<T>(c, ref d, ea, a, c.GetReg(d.R1, s), s);
    }

    private static void MI<T>(X86Cpu c, ref DecodedInsn d) where T : struct, IAluOp
    {
        int s = d.Size;
        uint ea = c.Ea(ref d);
        if (T.Writes)
        {
            ref byte p = ref c.RmwRef(d.MemSeg, ea, s);
            if (!Unsafe.IsNullRef(ref p))
            {
                X86Cpu.StoreRef(ref p, s, T.Apply(c, X86Cpu.LoadRef(ref p, s), d.Imm & X86Cpu.SizeMask(s), s));
                return;
            }
        }
        uint a = T.Writes ? c.ReadForWrite(d.MemSeg, ea, s) : c.Read(d.MemSeg, ea, s);
        if (c.Faulted) return;
        MemWriteBack<T>(c, ref d, ea, a, d.Imm & X86Cpu.SizeMask(s), s);
    }

    /// <summary>Stores first, then commits flags, so a faulting store leaves the flags untouched.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MemWriteBack<T>(X86Cpu c, ref DecodedInsn d, uint ea, uint a, uint b, int s) where T : struct, IAluOp
    {
        var saved = c.SaveCc();
        uint r = T.Apply(c, a, b, s);
        if (!T.Writes) return;
        c.Write(d.MemSeg, ea, s, r);
        if (c.Faulted) c.RestoreCc(saved);
    }

    private static void Inc(X86Cpu c, ref DecodedInsn d) => IncDec(c, ref d, 1, CcOp.Inc);
    private static void Dec(X86Cpu c, ref DecodedInsn d) => IncDec(c, ref d, 0xFFFFFFFF, CcOp.Dec);

    private static void Inc32R(X86Cpu c, ref DecodedInsn d)
    {
        uint cf = c.CF ? 1u : 0u;
        ref uint r = ref c.Gpr[d.R0];
        uint a = r;
        r = a + 1;
        c.SetCcCarry(CcOp.Inc, 4, a + 1, a, 1, cf);
    }

    private static void Dec32R(X86Cpu c, ref DecodedInsn d)
    {
        uint cf = c.CF ? 1u : 0u;
        ref uint r = ref c.Gpr[d.R0];
        uint a = r;
        r = a - 1;
        c.SetCcCarry(CcOp.Dec, 4, a - 1, a, 1, cf);
    }

    private static void IncDec(X86Cpu c, ref DecodedInsn d, uint delta, CcOp op)
    {
        int s = d.Size;
        if (d.Op0IsMem)
        {
            ref byte p = ref c.RmwRef(d.MemSeg, c.Ea(ref d), s);
            if (!Unsafe.IsNullRef(ref p))
            {
                uint a0 = X86Cpu.LoadRef(ref p, s), r0 = a0 + delta;
                uint cf0 = c.CF ? 1u : 0u;
                X86Cpu.StoreRef(ref p, s, r0);
                c.SetCcCarry(op, s, r0, a0, 1, cf0);
                return;
            }
        }
        uint ea = d.Op0IsMem ? c.Ea(ref d) : 0;
        uint a = d.Op0IsMem ? c.ReadForWrite(d.MemSeg, ea, s) : c.GetReg(d.R0, s);
        if (c.Faulted) return;
        uint r = a + delta;
        if (d.Op0IsMem) { c.Write(d.MemSeg, ea, s, r); if (c.Faulted) return; }
        else c.SetReg(d.R0, s, r);
        uint cf = c.CF ? 1u : 0u;
        c.SetCcCarry(op, s, r, a, 1, cf);
    }

    private static void Neg(X86Cpu c, ref DecodedInsn d)
    {
        int s = d.Size;
        if (d.Op0IsMem)
        {
            ref byte p = ref c.RmwRef(d.MemSeg, c.Ea(ref d), s);
            if (!Unsafe.IsNullRef(ref p))
            {
                uint a0 = X86Cpu.LoadRef(ref p, s), r0 = 0 - a0;
                X86Cpu.StoreRef(ref p, s, r0);
                c.SetCc(CcOp.Sub, s, r0, 0, a0);
                return;
            }
        }
        uint ea = d.Op0IsMem ? c.Ea(ref d) : 0;
        uint a = d.Op0IsMem ? c.ReadForWrite(d.MemSeg, ea, s) : c.GetReg(d.R0, s);
        if (c.Faulted) return;
        uint r = 0 - a;
        if (d.Op0IsMem) { c.Write(d.MemSeg, ea, s, r); if (c.Faulted) return; }
        else c.SetReg(d.R0, s, r);
        c.SetCc(CcOp.Sub, s, r, 0, a);
    }

    private static void Not(X86Cpu c, ref DecodedInsn d)
    {
        int s = d.Size;
        if (!d.Op0IsMem) { c.SetReg(d.R0, s, ~c.GetReg(d.R0, s)); return; }
        uint ea = c.Ea(ref d);
        ref byte p = ref c.RmwRef(d.MemSeg, ea, s);
        if (!Unsafe.IsNullRef(ref p)) { X86Cpu.StoreRef(ref p, s, ~X86Cpu.LoadRef(ref p, s)); return; }
        uint a = c.ReadForWrite(d.MemSeg, ea, s);
        if (c.Faulted) return;
        c.Write(d.MemSeg, ea, s, ~a);
    }
}
