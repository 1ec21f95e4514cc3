using System.Reflection.Emit;

namespace Replayvisor.Engine.Cpu.Compiled;

/// <summary>
/// Reading the arithmetic flags (conditions, CF) from the lazy-flag locals. When the operation is
/// known at compile time, the common reads are emitted as the one compare they fold to: a condition
/// after cmp/sub (<see cref="X86Cpu.JitCond"/>'s first case), ZF and SF of any operation, every
/// condition but PF after a logic operation (CF = OF = 0), CF after add, inc and dec. The others call
/// <see cref="X86Cpu.JitCond"/>/<see cref="X86Cpu.JitCarry"/> with constants, which the .NET JIT
/// inlines and folds to the same; emitting the compare directly spares the JIT importing and pruning
/// those methods' whole bodies at every read, a large part of its time per region.
/// </summary>
internal sealed partial class BlockEmitter
{
    /// <summary>Pushes CF as 0 or 1.</summary>
    private void LoadCarry()
    {
        SpillDynamicFlags();
        if (_flags != FlagState.Local)
        {
            _il.Emit(OpCodes.Ldarg_0);
            _il.Emit(OpCodes.Call, MCpuCarry);
            return;
        }
        switch (_fop)
        {
            case CcOp.Logic: Ldc(0); return;
            case CcOp.Sub: Masked(_fA); Masked(_fB); _il.Emit(OpCodes.Clt_Un); return;
            case CcOp.Add: Masked(_fRes); Masked(_fA); _il.Emit(OpCodes.Clt_Un); return;
            case CcOp.Inc: case CcOp.Dec: _il.Emit(OpCodes.Ldloc, _fCarry); Ldc(1); _il.Emit(OpCodes.And); return;
        }
        Ldc((int)_fop);
        Ldc(_fsize);
        LoadFlagOperands();
        _il.Emit(OpCodes.Call, MCarry);
    }

    /// <summary>Pushes condition cc (0 or 1; cc as <see cref="X86Cpu.Condition"/>: odd negates).</summary>
    private void LoadCondition(int cc)
    {
        SpillDynamicFlags();
        if (_flags != FlagState.Local)
        {
            _il.Emit(OpCodes.Ldarg_0);
            Ldc(cc);
            _il.Emit(OpCodes.Call, MCpuCond);
            return;
        }
        if (EmitFoldedCondition(cc & ~1))
        {
            if ((cc & 1) != 0) { Ldc(0); _il.Emit(OpCodes.Ceq); }
            return;
        }
        Ldc(cc);
        Ldc((int)_fop);
        Ldc(_fsize);
        LoadFlagOperands();
        _il.Emit(OpCodes.Call, MCond);
    }

    /// <summary>Pushes the even condition cc (0 or 1) as a compare, if it folds to one for the operation in _fop.</summary>
    private bool EmitFoldedCondition(int cc)
    {
        switch (cc)
        {
            case 4: ZeroFlag(); return true;
            case 8: SignFlag(); return true;
        }
        if (_fop == CcOp.Sub)
        {
            switch (cc)
            {
                case 2: Masked(_fA); Masked(_fB); _il.Emit(OpCodes.Clt_Un); return true;   // b: a < b
                case 6: Masked(_fA); Masked(_fB); _il.Emit(OpCodes.Cgt_Un); Ldc(0); _il.Emit(OpCodes.Ceq); return true; // be: !(a > b)
                case 0xC: Signed(_fA); Signed(_fB); _il.Emit(OpCodes.Clt); return true;    // l: a < b signed
                case 0xE: Signed(_fA); Signed(_fB); _il.Emit(OpCodes.Cgt); Ldc(0); _il.Emit(OpCodes.Ceq); return true; // le
            }
            return false;
        }
        if (_fop == CcOp.Logic)
        {
            switch (cc)
            {
                case 0: case 2: Ldc(0); return true;       // o, b: OF = CF = 0
                case 6: ZeroFlag(); return true;            // be: ZF
                case 0xC: SignFlag(); return true;          // l: SF != OF
                case 0xE: ZeroFlag(); SignFlag(); _il.Emit(OpCodes.Or); return true; // le: ZF or SF != OF
            }
            return false;
        }
        if (_fop == CcOp.Add && cc == 2)
        {
            Masked(_fRes); Masked(_fA); _il.Emit(OpCodes.Clt_Un); // CF: res < a
            return true;
        }
        return false;
    }

    /// <summary>Pushes ZF: (res &amp; mask) == 0.</summary>
    private void ZeroFlag()
    {
        Masked(_fRes);
        Ldc(0);
        _il.Emit(OpCodes.Ceq);
    }

    /// <summary>Pushes SF: (res &amp; sign) != 0.</summary>
    private void SignFlag()
    {
        _il.Emit(OpCodes.Ldloc, _fRes);
        Ldc((int)X86Cpu.SignBit(_fsize));
        _il.Emit(OpCodes.And);
        Ldc(0);
        _il.Emit(OpCodes.Cgt_Un);
    }

    /// <summary>Pushes a flag operand masked to the operation's size.</summary>
    private void Masked(LocalBuilder v)
    {
        _il.Emit(OpCodes.Ldloc, v);
        if (_fsize == 4) return;
        Ldc((int)X86Cpu.SizeMask(_fsize));
        _il.Emit(OpCodes.And);
    }

    /// <summary>Pushes a flag operand sign-extended from the operation's size.</summary>
    private void Signed(LocalBuilder v)
    {
        _il.Emit(OpCodes.Ldloc, v);
        if (_fsize == 1) _il.Emit(OpCodes.Conv_I1);
        else if (_fsize == 2) _il.Emit(OpCodes.Conv_I2);
    }

    private void LoadFlagOperands()
    {
        _il.Emit(OpCodes.Ldloc, _fRes);
        _il.Emit(OpCodes.Ldloc, _fA);
        _il.Emit(OpCodes.Ldloc, _fB);
        _il.Emit(OpCodes.Ldloc, _fCarry);
    }
}
