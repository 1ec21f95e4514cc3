using System.Reflection.Emit;
using Iced.Intel;
using Label = System.Reflection.Emit.Label;
using Replayvisor.Engine.Cpu.Decode;

namespace Replayvisor.Engine.Cpu.Compiled;

/// <summary>
/// Per-instruction translation. Each translated form does what its interpreter handler does
/// (Handlers/), in the same order of memory accesses, and changes registers and flags only
/// after every access that can fault has succeeded, so a fault leaves the state of the
/// instruction's start. Everything else runs its handler (<see cref="EmitHandlerCall"/>).
/// </summary>
internal sealed partial class BlockEmitter
{
    private enum Form
    {
        Handler, Nop, Mov, MovExtend, Lea, Alu, IncDec, Neg, Not, Xchg, Setcc, Cmovcc,
        Push, Pop, Leave, Jmp, Jcc, Call, Ret, JmpIndirect, CallIndirect, Shift, Imul, Mul1,
    }

    private static bool IsStackForm(Form f) => f is Form.Push or Form.Pop or Form.Leave or Form.Call or Form.Ret or Form.CallIndirect;

    private static bool NeedsStack32(Block b)
    {
        for (int i = 0; i < b.Count; i++)
            if (IsStackForm(Classify(ref b.Insns[i], i == b.Count - 1))) return true;
        return false;
    }

    /// <summary>Which translation applies; branches only as the block's last instruction.</summary>
    private static Form Classify(ref DecodedInsn d, bool last)
    {
        var insn = d.Insn;
        if (insn.IsInvalid || d.Lock != 0 || !OperandsAreGeneral(insn)) return Form.Handler;
        int n = insn.OpCount;
        switch (insn.Mnemonic)
        {
            case Mnemonic.Nop: return Form.Nop;
            case Mnemonic.Mov: return n == 2 ? Form.Mov : Form.Handler;
            case Mnemonic.Movzx: case Mnemonic.Movsx: return Form.MovExtend;
            case Mnemonic.Lea: return d.Op1IsMem ? Form.Lea : Form.Handler;
            case Mnemonic.Add: case Mnemonic.Or: case Mnemonic.Adc: case Mnemonic.Sbb: case Mnemonic.And:
            case Mnemonic.Sub: case Mnemonic.Xor: case Mnemonic.Cmp: case Mnemonic.Test:
                return n == 2 ? Form.Alu : Form.Handler;
            case Mnemonic.Inc: case Mnemonic.Dec: return Form.IncDec;
            case Mnemonic.Neg: return Form.Neg;
            case Mnemonic.Not: return Form.Not;
            case Mnemonic.Xchg: return d.MemOps == 0 ? Form.Xchg : Form.Handler;
            case Mnemonic.Push:
                return n == 1 && d.Size == 4 && insn.Op0Kind != OpKind.Memory ? Form.Push : Form.Handler;
            case Mnemonic.Pop:
                return n == 1 && d.Size == 4 && insn.Op0Kind == OpKind.Register ? Form.Pop : Form.Handler;
            case Mnemonic.Leave: return d.Size == 4 ? Form.Leave : Form.Handler;
            case Mnemonic.Jmp:
                if (!last) return Form.Handler;
                if (insn.Op0Kind is OpKind.NearBranch32 or OpKind.NearBranch16) return Form.Jmp;
                return d.Size == 4 && insn.Op0Kind is OpKind.Register or OpKind.Memory && !IsFar(insn) ? Form.JmpIndirect : Form.Handler;
            case Mnemonic.Call:
                if (!last || d.Size != 4) return Form.Handler;
                if (insn.Op0Kind == OpKind.NearBranch32) return Form.Call;
                return insn.Op0Kind is OpKind.Register or OpKind.Memory && !IsFar(insn) ? Form.CallIndirect : Form.Handler;
            case Mnemonic.Ret:
                return last && d.Size == 4 && n == 0 ? Form.Ret : Form.Handler;
            case Mnemonic.Shl: case Mnemonic.Sal: case Mnemonic.Shr: case Mnemonic.Sar:
                // By CL only on a register: a count of 0 reads memory without asking for write access (Handlers/Shift.cs).
                if (n != 2) return Form.Handler;
                return IsCountInCl(ref d) ? d.Op0IsMem ? Form.Handler : Form.Shift : (d.Imm & 0x1F) != 0 ? Form.Shift : Form.Handler;
            case Mnemonic.Imul:
                if (n == 1) return d.Size == 4 ? Form.Mul1 : Form.Handler;
                return n is 2 or 3 && d.Size is 2 or 4 ? Form.Imul : Form.Handler;
            case Mnemonic.Mul:
                return n == 1 && d.Size == 4 ? Form.Mul1 : Form.Handler;
        }
        if (insn.IsJccShortOrNear) return last ? Form.Jcc : Form.Handler;
        if (insn.Mnemonic is >= Mnemonic.Seta and <= Mnemonic.Setp || insn.Mnemonic == Mnemonic.Sets) return Form.Setcc;
        if (insn.Mnemonic is >= Mnemonic.Cmova and <= Mnemonic.Cmovs) return Form.Cmovcc;
        return Form.Handler;
    }

    private static bool IsFar(in Instruction insn) =>
        insn.Op0Kind == OpKind.Memory && insn.MemorySize is MemorySize.SegPtr16 or MemorySize.SegPtr32;

    /// <summary>
    /// Every register operand is a general-purpose register (segment, control and debug moves take
    /// their handlers), or with <paramref name="segments"/> a general-purpose or segment register.
    /// </summary>
    internal static bool OperandsAreGeneral(in Instruction insn, bool segments = false)
    {
        for (int i = 0; i < insn.OpCount; i++)
        {
            if (insn.GetOpKind(i) != OpKind.Register) continue;
            Register r = insn.GetOpRegister(i);
            if (!(r.IsGPR8() || r.IsGPR16() || r.IsGPR32() || segments && r.IsSegmentRegister())) return false;
        }
        return true;
    }

    /// <summary>Emits instruction i; true when it emitted the block's end (a translated branch).</summary>
    private bool EmitInstruction(int i, ref DecodedInsn d, bool last)
    {
        Form f = Classify(ref d, last);
        if (f == Form.Handler) { EmitHandlerCall(i, ref d); return false; }
        var pre = Snapshot();
        Label? fault = null;
        Label Fault() => fault ??= ExitAt(i, pre, null);
        var ctx = new Ctx(i, d.Eip, d.NextEip, Fault);
        int s = d.Size;
        switch (f)
        {
            case Form.Nop: break;
            case Form.Mov: EmitMov(ctx, ref d); break;
            case Form.MovExtend:
            {
                int from = (int)d.Imm2;
                if (d.Op1IsMem) ReadMem(ctx, d.MemSeg, Ea(ref d), from); else LoadReg(d.R1, from);
                if (d.Cc != 0) _il.Emit(from == 1 ? OpCodes.Conv_I1 : OpCodes.Conv_I2);
                StoreReg(d.R0, s);
                break;
            }
            case Form.Lea:
                EmitEa(ref d);
                StoreReg(d.R0, s);
                break;
            case Form.Alu: EmitAlu(ctx, ref d); break;
            case Form.Shift: EmitShift(ctx, ref d); break;
            case Form.Imul: EmitImul(ctx, ref d); break;
            case Form.Mul1: EmitMul1(ctx, ref d); break;
            case Form.IncDec: case Form.Neg: case Form.Not: EmitUnary(ctx, ref d, f); break;
            case Form.Xchg:
            {
                var a = Temp(); var b = Temp();
                LoadReg(d.R0, s); _il.Emit(OpCodes.Stloc, a);
                LoadReg(d.R1, s); _il.Emit(OpCodes.Stloc, b);
                _il.Emit(OpCodes.Ldloc, b); StoreReg(d.R0, s);
                _il.Emit(OpCodes.Ldloc, a); StoreReg(d.R1, s);
                break;
            }
            case Form.Setcc:
            {
                var v = Temp();
                LoadCondition(d.Cc); _il.Emit(OpCodes.Stloc, v);
                if (d.Op0IsMem) WriteMem(ctx, d.MemSeg, Ea(ref d), 1, v);
                else { _il.Emit(OpCodes.Ldloc, v); StoreReg(d.R0, 1); }
                break;
            }
            case Form.Cmovcc:
            {
                var v = Temp();
                if (d.Op1IsMem) ReadMem(ctx, d.MemSeg, Ea(ref d), s); else LoadReg(d.R1, s);
                _il.Emit(OpCodes.Stloc, v);
                EnsureLoaded(d.R0); // loaded on both paths of the condition
                Label skip = _il.DefineLabel();
                LoadCondition(d.Cc);
                _il.Emit(OpCodes.Brfalse, skip);
                _il.Emit(OpCodes.Ldloc, v);
                StoreReg(d.R0, s);
                _il.MarkLabel(skip);
                break;
            }
            case Form.Push:
            {
                var v = Temp();
                if (d.Insn.Op0Kind == OpKind.Register) LoadReg(d.R0, 4); else Ldc((int)d.Imm);
                _il.Emit(OpCodes.Stloc, v);
                var sp = Temp();
                LoadReg(Reg.ESP, 4); Ldc(4); _il.Emit(OpCodes.Sub); _il.Emit(OpCodes.Stloc, sp);
                WriteMem(ctx, Seg.SS, sp, 4, v);
                _il.Emit(OpCodes.Ldloc, sp); StoreReg(Reg.ESP, 4);
                break;
            }
            case Form.Pop:
            {
                var v = Temp(); var sp = Temp();
                LoadReg(Reg.ESP, 4); _il.Emit(OpCodes.Stloc, sp);
                ReadMem(ctx, Seg.SS, sp, 4); _il.Emit(OpCodes.Stloc, v);
                _il.Emit(OpCodes.Ldloc, sp); Ldc(4); _il.Emit(OpCodes.Add); StoreReg(Reg.ESP, 4);
                _il.Emit(OpCodes.Ldloc, v); StoreReg(d.R0, 4); // pop esp keeps the popped value
                break;
            }
            case Form.Leave:
            {
                // mov esp, ebp; pop ebp (32-bit stack: the region's entry checked SS.B; Handlers/StackFrame.cs Leave)
                var bp = Temp(); var v = Temp();
                LoadReg(Reg.EBP, 4); _il.Emit(OpCodes.Stloc, bp);
                ReadMem(ctx, Seg.SS, bp, 4); _il.Emit(OpCodes.Stloc, v);
                _il.Emit(OpCodes.Ldloc, bp); Ldc(4); _il.Emit(OpCodes.Add); StoreReg(Reg.ESP, 4);
                _il.Emit(OpCodes.Ldloc, v); StoreReg(Reg.EBP, 4);
                break;
            }
            case Form.Jmp:
            {
                uint t = Target(ref d);
                CheckLimit(ctx, () => Ldc((int)t));
                EmitTransfer(t);
                return true;
            }
            case Form.Jcc:
            {
                uint t = Target(ref d);
                Label taken = _il.DefineLabel();
                LoadCondition(d.Cc);
                _il.Emit(OpCodes.Brtrue, taken);
                EmitTransfer(d.NextEip);
                _il.MarkLabel(taken);
                CheckLimit(ctx, () => Ldc((int)t));
                EmitTransfer(t);
                return true;
            }
            case Form.Call:
            {
                var t = Temp();
                Ldc((int)d.Imm); _il.Emit(OpCodes.Stloc, t);
                EmitCall(ctx, t);
                EmitTransfer(d.Imm);
                return true;
            }
            case Form.CallIndirect:
            {
                var t = Temp();
                LoadOp0(ctx, ref d, 4); _il.Emit(OpCodes.Stloc, t);
                EmitCall(ctx, t);
                _il.Emit(OpCodes.Ldloc, t);
                EmitEndWithEipOnStack();
                return true;
            }
            case Form.JmpIndirect:
            {
                var t = Temp();
                LoadOp0(ctx, ref d, 4); _il.Emit(OpCodes.Stloc, t);
                CheckLimit(ctx, () => _il.Emit(OpCodes.Ldloc, t));
                _il.Emit(OpCodes.Ldloc, t);
                EmitEndWithEipOnStack();
                return true;
            }
            case Form.Ret:
            {
                var t = Temp(); var sp = Temp();
                LoadReg(Reg.ESP, 4); _il.Emit(OpCodes.Stloc, sp);
                ReadMem(ctx, Seg.SS, sp, 4); _il.Emit(OpCodes.Stloc, t);
                CheckLimit(ctx, () => _il.Emit(OpCodes.Ldloc, t));
                _il.Emit(OpCodes.Ldloc, sp); Ldc(4); _il.Emit(OpCodes.Add); StoreReg(Reg.ESP, 4);
                EmitDynamicTransfer(t);
                return true;
            }
        }
        return false;
    }

    /// <summary>What a translation needs to leave the block from instruction I.</summary>
    private readonly record struct Ctx(int I, uint Eip, uint NextEip, Func<Label> Fault);

    private void EmitMov(Ctx c, ref DecodedInsn d)
    {
        int s = d.Size;
        bool imm = d.Insn.GetOpKind(1) is not (OpKind.Register or OpKind.Memory);
        if (d.Op0IsMem)
        {
            var ea = Ea(ref d);
            var v = Temp();
            if (imm) Ldc((int)d.Imm); else LoadReg(d.R1, s);
            _il.Emit(OpCodes.Stloc, v);
            WriteMem(c, d.MemSeg, ea, s, v);
            return;
        }
        if (d.Op1IsMem) ReadMem(c, d.MemSeg, Ea(ref d), s);
        else if (imm) Ldc((int)d.Imm);
        else LoadReg(d.R1, s);
        StoreReg(d.R0, s);
    }

    /// <summary>add/or/adc/sbb/and/sub/xor/cmp/test in every operand form (Handlers/Alu.cs).</summary>
    private void EmitAlu(Ctx c, ref DecodedInsn d)
    {
        int s = d.Size;
        var m = d.Insn.Mnemonic;
        bool imm = d.Insn.GetOpKind(1) is not (OpKind.Register or OpKind.Memory);
        bool writes = m is not (Mnemonic.Cmp or Mnemonic.Test);
        var a = Temp(); var b = Temp(); var r = Temp();
        LocalBuilder? ea = null;
        if (d.Op0IsMem) { ea = Ea(ref d); ReadMem(c, d.MemSeg, ea, s, forWrite: writes); }
        else LoadReg(d.R0, s);
        _il.Emit(OpCodes.Stloc, a);
        if (imm) Ldc((int)(s == 4 ? d.Imm : d.Imm & X86Cpu.SizeMask(s)));
        else if (d.Op1IsMem) ReadMem(c, d.MemSeg, Ea(ref d), s);
        else LoadReg(d.R1, s);
        _il.Emit(OpCodes.Stloc, b);
        LocalBuilder? cin = null;
        if (m is Mnemonic.Adc or Mnemonic.Sbb)
        {
            cin = Temp();
            LoadCarry();
            _il.Emit(OpCodes.Stloc, cin);
        }
        _il.Emit(OpCodes.Ldloc, a);
        _il.Emit(OpCodes.Ldloc, b);
        CcOp op;
        switch (m)
        {
            case Mnemonic.Add: _il.Emit(OpCodes.Add); op = CcOp.Add; break;
            case Mnemonic.Adc: _il.Emit(OpCodes.Add); _il.Emit(OpCodes.Ldloc, cin!); _il.Emit(OpCodes.Add); op = CcOp.Adc; break;
            case Mnemonic.Sub: case Mnemonic.Cmp: _il.Emit(OpCodes.Sub); op = CcOp.Sub; break;
            case Mnemonic.Sbb: _il.Emit(OpCodes.Sub); _il.Emit(OpCodes.Ldloc, cin!); _il.Emit(OpCodes.Sub); op = CcOp.Sbb; break;
            case Mnemonic.And: case Mnemonic.Test: _il.Emit(OpCodes.And); op = CcOp.Logic; break;
            case Mnemonic.Or: _il.Emit(OpCodes.Or); op = CcOp.Logic; break;
            default: _il.Emit(OpCodes.Xor); op = CcOp.Logic; break;
        }
        _il.Emit(OpCodes.Stloc, r);
        if (writes)
        {
            if (ea != null) WriteMem(c, d.MemSeg, ea, s, r);
            else { _il.Emit(OpCodes.Ldloc, r); StoreReg(d.R0, s); }
        }
        if (op == CcOp.Logic) SetFlags(op, s, r, null, null, null);
        else SetFlags(op, s, r, a, b, cin);
    }

    /// <summary>inc/dec/neg/not on a register or memory.</summary>
    private void EmitUnary(Ctx c, ref DecodedInsn d, Form f)
    {
        int s = d.Size;
        var a = Temp(); var r = Temp();
        LocalBuilder? ea = null;
        if (d.Op0IsMem) { ea = Ea(ref d); ReadMem(c, d.MemSeg, ea, s, forWrite: true); }
        else LoadReg(d.R0, s);
        _il.Emit(OpCodes.Stloc, a);
        LocalBuilder? cf = null;
        switch (f)
        {
            case Form.IncDec:
                cf = Temp();
                LoadCarry();
                _il.Emit(OpCodes.Stloc, cf);
                _il.Emit(OpCodes.Ldloc, a);
                Ldc(1);
                _il.Emit(d.Insn.Mnemonic == Mnemonic.Inc ? OpCodes.Add : OpCodes.Sub);
                break;
            case Form.Neg:
                Ldc(0);
                _il.Emit(OpCodes.Ldloc, a);
                _il.Emit(OpCodes.Sub);
                break;
            default:
                _il.Emit(OpCodes.Ldloc, a);
                _il.Emit(OpCodes.Not);
                break;
        }
        _il.Emit(OpCodes.Stloc, r);
        if (ea != null) WriteMem(c, d.MemSeg, ea, s, r);
        else { _il.Emit(OpCodes.Ldloc, r); StoreReg(d.R0, s); }
        if (f == Form.IncDec) SetFlags(d.Insn.Mnemonic == Mnemonic.Inc ? CcOp.Inc : CcOp.Dec, s, r, a, null, cf);
        else if (f == Form.Neg) SetFlags(CcOp.Sub, s, r, null, a, null);
    }

    /// <summary>Near call to the target in t: limit check, push the return address (Handlers/Branch.cs CallTo); the caller emits the jump.</summary>
    private void EmitCall(Ctx c, LocalBuilder t)
    {
        CheckLimit(c, () => _il.Emit(OpCodes.Ldloc, t));
        var sp = Temp(); var ret = Temp();
        LoadReg(Reg.ESP, 4); Ldc(4); _il.Emit(OpCodes.Sub); _il.Emit(OpCodes.Stloc, sp);
        Ldc((int)c.NextEip); _il.Emit(OpCodes.Stloc, ret);
        WriteMem(c, Seg.SS, sp, 4, ret);
        _il.Emit(OpCodes.Ldloc, sp); StoreReg(Reg.ESP, 4);
    }

    /// <summary>Operand 0 (register or memory) at size bytes.</summary>
    private void LoadOp0(Ctx c, ref DecodedInsn d, int size)
    {
        if (d.Op0IsMem) ReadMem(c, d.MemSeg, Ea(ref d), size);
        else LoadReg(d.R0, size);
    }

    /// <summary>#GP(0) when the target pushed by target() is beyond the CS limit (SDM vol. 2 JMP/CALL/RET).</summary>
    private void CheckLimit(Ctx c, Action target)
    {
        if (!_needsCsLimit) throw new InvalidOperationException("a near branch is missing from BlockEmitter.EndsInNearBranch");
        Label gp = _il.DefineLabel();
        _il.Emit(OpCodes.Ldloc, _csLimit);
        target();
        _il.Emit(OpCodes.Blt_Un, gp);
        Label fault = c.Fault();
        uint eip = c.Eip;
        _deferred.Add(() =>
        {
            _il.MarkLabel(gp);
            _il.Emit(OpCodes.Ldarg_0);
            Ldc((int)eip);
            _il.Emit(OpCodes.Call, MRaiseGp);
            _il.Emit(OpCodes.Br, fault);
        });
    }

    /// <summary>The effective address into a new local (Operands.cs Ea).</summary>
    private LocalBuilder Ea(ref DecodedInsn d)
    {
        EmitEa(ref d);
        var ea = Temp();
        _il.Emit(OpCodes.Stloc, ea);
        return ea;
    }

    private void EmitEa(ref DecodedInsn d)
    {
        Ldc((int)d.Disp);
        if (d.Base != DecodedInsn.NoReg) { LoadReg(d.Base, 4); _il.Emit(OpCodes.Add); }
        if (d.Index != DecodedInsn.NoReg)
        {
            LoadReg(d.Index, 4);
            if (d.Scale != 0) { Ldc(d.Scale); _il.Emit(OpCodes.Shl); }
            _il.Emit(OpCodes.Add);
        }
        if (d.AddrSize != 4) { Ldc(0xFFFF); _il.Emit(OpCodes.And); }
    }

    /// <summary>
    /// An instruction without a translation runs its handler as the block cache would: state in
    /// the CPU, EIP at the next instruction, Icount at this one; afterwards registers are reloaded
    /// lazily and a set exit flag leaves the block at this instruction. Unless the handler is one of
    /// <see cref="LinkingHandlers"/>, the member then ends without branching to another member.
    /// </summary>
    private void EmitHandlerCall(int i, ref DecodedInsn d)
    {
        Spill(Snapshot());
        _dirty = 0;
        _flags = FlagState.Cpu;
        _handlerRan |= !LinkingHandlers.KeepsLinking(ref d);
        uint eip = d.Eip, next = d.NextEip;
        StoreField(FEip, () => Ldc((int)next));
        StoreField(FInsnEip, () => Ldc((int)eip));
        SyncIcount(_synced, i);
        _synced = i;
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Ldarg_1);
        Ldc(_k);
        _il.Emit(OpCodes.Ldelem_Ref);
        _il.Emit(OpCodes.Ldfld, FInsns);
        Ldc(i);
        _il.Emit(OpCodes.Ldelema, typeof(DecodedInsn));
        _il.Emit(OpCodes.Call, MHandler);
        _loaded = 0;
        LoadMemoryContext(); // the handler may have loaded a segment or changed CPL or the TLB
        Label exit = _il.DefineLabel();
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Ldfld, FExit);
        _il.Emit(OpCodes.Brtrue, exit);
        int code = Result(i);
        _deferred.Add(() =>
        {
            _il.MarkLabel(exit);
            Ldc(code);
            _il.Emit(OpCodes.Ret);
        });
    }
}
