using System.Reflection.Emit;
using Iced.Intel;
using Label = System.Reflection.Emit.Label;
using Replayvisor.Engine.Cpu.Decode;

namespace Replayvisor.Engine.Cpu.Compiled;

/// <summary>
/// shl/sal/shr/sar, two- and three-operand imul and 32-bit one-operand mul/imul in IL, with their flags kept lazily
/// (<see cref="CcOp.Shl"/>, <see cref="CcOp.Mul"/>...): the results and flags of
/// Handlers/Shift.cs and Handlers/MulDiv.cs (SDM vol. 2 SAL/SAR/SHL/SHR, IMUL).
/// </summary>
internal sealed partial class BlockEmitter
{
    // Handlers/Shift.cs Select: the operation in Cc (4 shl, 5 shr, 7 sar), the top bit of Imm for a count in CL.
    private const byte ShiftShl = 4, ShiftShr = 5;

    private static bool IsCountInCl(ref DecodedInsn d) => (d.Imm & 0x8000_0000) != 0;

    /// <summary>
    /// A shift by an immediate (masked count 1-31, register or memory) or by CL (register). A count
    /// of 0 in CL changes nothing, flags included: the flags then leave in the dynamic locals, which
    /// both paths fill (the shift's operation, or the operation that set them before).
    /// </summary>
    private void EmitShift(Ctx c, ref DecodedInsn d)
    {
        int s = d.Size;
        CcOp op = d.Cc == ShiftShl ? CcOp.Shl : d.Cc == ShiftShr ? CcOp.Shr : CcOp.Sar;
        var a = Temp(); var n = Temp(); var r = Temp();
        LocalBuilder? ea = null;
        if (d.Op0IsMem) { ea = Ea(ref d); ReadMem(c, d.MemSeg, ea, s, forWrite: true); }
        else LoadReg(d.R0, s); // loads the whole register, which the store below merges into on both paths
        _il.Emit(OpCodes.Stloc, a);
        bool cl = IsCountInCl(ref d);
        Label done = _il.DefineLabel();
        if (cl)
        {
            LoadReg(Reg.ECX, 1);
            Ldc(0x1F);
            _il.Emit(OpCodes.And);
            _il.Emit(OpCodes.Stloc, n);
            Label shift = _il.DefineLabel();
            _il.Emit(OpCodes.Ldloc, n);
            _il.Emit(OpCodes.Brtrue, shift);
            FlagsToDynamic();
            _il.Emit(OpCodes.Br, done);
            _il.MarkLabel(shift);
        }
        else
        {
            Ldc((int)(d.Imm & 0x1F));
            _il.Emit(OpCodes.Stloc, n);
        }
        _il.Emit(OpCodes.Ldloc, a);
        if (op == CcOp.Sar && s != 4) _il.Emit(s == 2 ? OpCodes.Conv_I2 : OpCodes.Conv_I1);
        _il.Emit(OpCodes.Ldloc, n);
        _il.Emit(op == CcOp.Shl ? OpCodes.Shl : op == CcOp.Shr ? OpCodes.Shr_Un : OpCodes.Shr);
        if (s != 4) { Ldc((int)X86Cpu.SizeMask(s)); _il.Emit(OpCodes.And); }
        _il.Emit(OpCodes.Stloc, r);
        if (ea != null) WriteMem(c, d.MemSeg, ea, s, r);
        else { _il.Emit(OpCodes.Ldloc, r); StoreReg(d.R0, s); }
        SetFlags(op, s, r, a, n, null);
        if (!cl) return;
        // Both paths leave the flags in the dynamic locals.
        Ldc((int)op); _il.Emit(OpCodes.Stloc, _fOp);
        Ldc(s); _il.Emit(OpCodes.Stloc, _fSize);
        _il.MarkLabel(done);
        _flags = FlagState.Dynamic;
    }

    /// <summary>imul r, r/m and imul r, r/m, imm (16 and 32 bits): the low half of the signed product; CF = OF = it did not fit.</summary>
    private void EmitImul(Ctx c, ref DecodedInsn d)
    {
        int s = d.Size;
        var a = Temp(); var b = Temp(); var r = Temp(); var ovf = Temp();
        if (d.Insn.OpCount == 2)
        {
            LoadReg(d.R0, s);
            _il.Emit(OpCodes.Stloc, a);
            if (d.Op1IsMem) ReadMem(c, d.MemSeg, Ea(ref d), s); else LoadReg(d.R1, s);
            _il.Emit(OpCodes.Stloc, b);
        }
        else
        {
            if (d.Op1IsMem) ReadMem(c, d.MemSeg, Ea(ref d), s); else LoadReg(d.R1, s);
            _il.Emit(OpCodes.Stloc, a);
            Ldc((int)d.Imm2);
            _il.Emit(OpCodes.Stloc, b);
        }
        if (s == 4)
        {
            var p = Temp64();
            _il.Emit(OpCodes.Ldloc, a); _il.Emit(OpCodes.Conv_I8);
            _il.Emit(OpCodes.Ldloc, b); _il.Emit(OpCodes.Conv_I8);
            _il.Emit(OpCodes.Mul);
            _il.Emit(OpCodes.Stloc, p);
            _il.Emit(OpCodes.Ldloc, p); _il.Emit(OpCodes.Conv_U4); _il.Emit(OpCodes.Stloc, r);
            // overflow: the product differs from its low half sign-extended
            _il.Emit(OpCodes.Ldloc, p);
            _il.Emit(OpCodes.Ldloc, r); _il.Emit(OpCodes.Conv_I8);
        }
        else
        {
            var p = Temp();
            _il.Emit(OpCodes.Ldloc, a); _il.Emit(OpCodes.Conv_I2);
            _il.Emit(OpCodes.Ldloc, b); _il.Emit(OpCodes.Conv_I2);
            _il.Emit(OpCodes.Mul);
            _il.Emit(OpCodes.Stloc, p);
            _il.Emit(OpCodes.Ldloc, p); Ldc(0xFFFF); _il.Emit(OpCodes.And); _il.Emit(OpCodes.Stloc, r);
            _il.Emit(OpCodes.Ldloc, p);
            _il.Emit(OpCodes.Ldloc, p); _il.Emit(OpCodes.Conv_I2);
        }
        _il.Emit(OpCodes.Ceq);
        Ldc(0);
        _il.Emit(OpCodes.Ceq);
        _il.Emit(OpCodes.Stloc, ovf);
        _il.Emit(OpCodes.Ldloc, r);
        StoreReg(d.R0, s);
        SetFlags(CcOp.Mul, s, r, null, null, ovf);
    }

    /// <summary>mul r/m32 and imul r/m32: EDX:EAX = EAX * source (unsigned, signed); CF = OF = the high half is needed (Handlers/MulDiv.cs).</summary>
    private void EmitMul1(Ctx c, ref DecodedInsn d)
    {
        bool signed = d.Insn.Mnemonic == Mnemonic.Imul;
        var src = Temp(); var lo = Temp(); var ovf = Temp();
        var p = Temp64();
        if (d.Op0IsMem) ReadMem(c, d.MemSeg, Ea(ref d), 4); else LoadReg(d.R0, 4);
        _il.Emit(OpCodes.Stloc, src);
        LoadReg(Reg.EAX, 4);
        _il.Emit(signed ? OpCodes.Conv_I8 : OpCodes.Conv_U8);
        _il.Emit(OpCodes.Ldloc, src);
        _il.Emit(signed ? OpCodes.Conv_I8 : OpCodes.Conv_U8);
        _il.Emit(OpCodes.Mul);
        _il.Emit(OpCodes.Stloc, p);
        _il.Emit(OpCodes.Ldloc, p); _il.Emit(OpCodes.Conv_U4); _il.Emit(OpCodes.Stloc, lo);
        // overflow: mul, a non-zero high half; imul, a product other than its low half sign-extended
        _il.Emit(OpCodes.Ldloc, p);
        if (signed) { _il.Emit(OpCodes.Ldloc, lo); _il.Emit(OpCodes.Conv_I8); }
        else { Ldc(32); _il.Emit(OpCodes.Shr_Un); _il.Emit(OpCodes.Ldc_I4_0); _il.Emit(OpCodes.Conv_U8); }
        _il.Emit(OpCodes.Ceq);
        Ldc(0);
        _il.Emit(OpCodes.Ceq);
        _il.Emit(OpCodes.Stloc, ovf);
        _il.Emit(OpCodes.Ldloc, lo);
        StoreReg(Reg.EAX, 4);
        _il.Emit(OpCodes.Ldloc, p); Ldc(32); _il.Emit(OpCodes.Shr_Un); _il.Emit(OpCodes.Conv_U4);
        StoreReg(Reg.EDX, 4);
        SetFlags(CcOp.Mul, 4, lo, null, null, ovf);
    }
}
