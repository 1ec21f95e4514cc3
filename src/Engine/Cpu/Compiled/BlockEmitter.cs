using System.Reflection;
using System.Reflection.Emit;
using Replayvisor.Engine.Cpu.Decode;

namespace Replayvisor.Engine.Cpu.Compiled;

/// <summary>
/// Emits one block: the state the compiler tracks between instructions (which guest registers
/// are in locals and which of those changed, where the flags are, how far Icount is stored),
/// and the exits. Every exit is emitted out of line after the straight-line body, with the
/// state as it was at its branch, so the common path carries no spill code.
/// </summary>
internal sealed partial class BlockEmitter
{
    private readonly ILGenerator _il;
    private readonly Block _b;
    private readonly LocalBuilder[] _reg = new LocalBuilder[8];
    private readonly LocalBuilder _gpr, _fRes, _fA, _fB, _fCarry, _status, _pend;

    // Registers whose locals hold the guest value, and those changed since the last store to Gpr.
    private int _loaded, _dirty;
    // Flags: in the CPU's lazy fields, or (_flagsLocal) the operands of _fop/_fsize in locals.
    private bool _flagsLocal;
    private CcOp _fop;
    private int _fsize;
    // Icount holds the count at the start of instruction _synced.
    private int _synced;
    private bool _usesPend;

    private readonly List<Action> _deferred = new();

    private static readonly FieldInfo FEip = F(nameof(X86Cpu.Eip)), FInsnEip = F(nameof(X86Cpu.InsnEip)),
        FExit = F(nameof(X86Cpu.Exit)), FIcount = F("_icount"), FCcKind = F(nameof(X86Cpu.CcKind)),
        FCcSize = F(nameof(X86Cpu.CcSize)), FCcRes = F(nameof(X86Cpu.CcRes)), FCcA = F(nameof(X86Cpu.CcA)),
        FCcB = F(nameof(X86Cpu.CcB)), FCcCarry = F(nameof(X86Cpu.CcCarry)), FStopAt = F("_stopAt");

    private static readonly MethodInfo MRead = M(nameof(X86Cpu.JitRead)), MReadRmw = M(nameof(X86Cpu.JitReadRmw)), MWrite = M(nameof(X86Cpu.JitWrite)),
        MHandler = M(nameof(X86Cpu.JitHandler)), MGpr = M(nameof(X86Cpu.JitGpr)), MCsLimit = M(nameof(X86Cpu.JitCsLimit)),
        MStack32 = M(nameof(X86Cpu.JitStack32)), MCond = M(nameof(X86Cpu.JitCond)), MCarry = M(nameof(X86Cpu.JitCarry)),
        MCpuCarry = M(nameof(X86Cpu.JitCpuCarry)), MCpuCond = M(nameof(X86Cpu.JitCpuCond)), MRaiseGp = M(nameof(X86Cpu.JitRaiseGp));

    private static FieldInfo F(string name) =>
        typeof(X86Cpu).GetField(name, BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance)
        ?? throw new MissingFieldException(nameof(X86Cpu), name);

    private static MethodInfo M(string name) =>
        typeof(X86Cpu).GetMethod(name, BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)
        ?? throw new MissingMethodException(nameof(X86Cpu), name);

    public BlockEmitter(ILGenerator il, Block b)
    {
        _il = il;
        _b = b;
        for (int r = 0; r < 8; r++) _reg[r] = il.DeclareLocal(typeof(uint));
        _gpr = il.DeclareLocal(typeof(uint).MakeByRefType());
        _fRes = il.DeclareLocal(typeof(uint));
        _fA = il.DeclareLocal(typeof(uint));
        _fB = il.DeclareLocal(typeof(uint));
        _fCarry = il.DeclareLocal(typeof(uint));
        _status = il.DeclareLocal(typeof(int));
        _pend = il.DeclareLocal(typeof(int));
    }

    public void Emit()
    {
        if (NeedsStack32())
        {
            Label ok = _il.DefineLabel();
            _il.Emit(OpCodes.Ldarg_0);
            _il.Emit(OpCodes.Call, MStack32);
            _il.Emit(OpCodes.Brtrue, ok);
            _il.Emit(OpCodes.Ldc_I4_M1);
            _il.Emit(OpCodes.Ret);
            _il.MarkLabel(ok);
        }
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Call, MGpr);
        _il.Emit(OpCodes.Stloc, _gpr);
        if (IsSelfLoop())
        {
            // The loop head's state: every register in its local (and stored back at any exit), flags in the CPU.
            for (int r = 0; r < 8; r++) EnsureLoaded(r);
            _dirty = 0xFF;
            _loopHead = _il.DefineLabel();
            _il.MarkLabel(_loopHead.Value);
        }
        bool ended = false;
        for (int i = 0; i < _b.Count; i++)
        {
            ref DecodedInsn d = ref _b.Insns[i];
            _usesPend = false;
            ended = EmitInstruction(i, ref d, i == _b.Count - 1);
        }
        if (!ended) EmitEnd(_b.EndEip);
        foreach (var a in _deferred) a();
    }

    // ---- loops ----

    private Label? _loopHead;

    /// <summary>The block ends with a near jmp/jcc back to its own first instruction (a tight loop).</summary>
    private bool IsSelfLoop()
    {
        ref DecodedInsn last = ref _b.Insns[_b.Count - 1];
        var f = Classify(ref last, true);
        if (f is not (Form.Jmp or Form.Jcc)) return false;
        uint t = last.Size == 2 ? last.Imm & 0xFFFF : last.Imm;
        return t == _b.Eip;
    }

    /// <summary>
    /// The taken branch back to the block's start: count the iteration and, while the whole block
    /// still fits the budget (so a stop count stays exact), run it again without leaving the
    /// compiled code; otherwise end with EIP at the start. The loop head expects all registers in
    /// locals and the flags in the CPU, so the back edge reloads registers a handler call dropped
    /// and stores the lazy flags.
    /// </summary>
    private void EmitBackEdge()
    {
        for (int r = 0; r < 8; r++) EnsureLoaded(r);
        var s = Snapshot();
        Spill(s with { Dirty = 0 });
        SyncIcount(_synced, _b.Count);
        // if (_icount + Count <= _stopAt) goto head (a host may lower _stopAt below _icount: StopAtCurrentCount)
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Ldfld, FIcount);
        Ldc(_b.Count);
        _il.Emit(OpCodes.Conv_I8);
        _il.Emit(OpCodes.Add);
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Ldfld, FStopAt);
        _il.Emit(OpCodes.Ble_Un, _loopHead!.Value);
        // Registers still need storing; flags and Icount are stored.
        Spill(new State(0xFF, false, CcOp.None, 0, _b.Count));
        StoreField(FEip, () => Ldc((int)_b.Eip));
        Ldc(_b.Count);
        _il.Emit(OpCodes.Ret);
    }

    // ---- state snapshots and exits ----

    private readonly record struct State(int Dirty, bool FlagsLocal, CcOp Op, int Size, int Synced);

    private State Snapshot() => new(_dirty, _flagsLocal, _fop, _fsize, _synced);

    /// <summary>Stores what a state holds in locals into the CPU (registers, lazy flags).</summary>
    private void Spill(State s)
    {
        for (int r = 0; r < 8; r++)
        {
            if ((s.Dirty & (1 << r)) == 0) continue;
            GprAddr(r);
            _il.Emit(OpCodes.Ldloc, _reg[r]);
            _il.Emit(OpCodes.Stind_I4);
        }
        if (s.FlagsLocal)
        {
            StoreField(FCcKind, () => Ldc((int)s.Op));
            StoreField(FCcSize, () => Ldc(s.Size));
            StoreField(FCcRes, () => _il.Emit(OpCodes.Ldloc, _fRes));
            StoreField(FCcA, () => _il.Emit(OpCodes.Ldloc, _fA));
            StoreField(FCcB, () => _il.Emit(OpCodes.Ldloc, _fB));
            if (s.Op is CcOp.Adc or CcOp.Sbb or CcOp.Inc or CcOp.Dec) StoreField(FCcCarry, () => _il.Emit(OpCodes.Ldloc, _fCarry));
        }
    }

    /// <summary>Icount += (index - synced): the instructions before index have retired.</summary>
    private void SyncIcount(int synced, int index)
    {
        if (index == synced) return;
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Ldfld, FIcount);
        Ldc(index - synced);
        _il.Emit(OpCodes.Conv_I8);
        _il.Emit(OpCodes.Add);
        _il.Emit(OpCodes.Stfld, FIcount);
    }

    /// <summary>A label that leaves the block at instruction i in state s: spill, count the earlier instructions, store EIP if given, return i.</summary>
    private Label ExitAt(int i, State s, uint? eip)
    {
        Label l = _il.DefineLabel();
        _deferred.Add(() =>
        {
            _il.MarkLabel(l);
            Spill(s);
            if (eip is uint e) StoreField(FEip, () => Ldc((int)e));
            SyncIcount(s.Synced, i);
            Ldc(i);
            _il.Emit(OpCodes.Ret);
        });
        return l;
    }

    /// <summary>The normal end: EIP is on the stack; spill, count the whole block, return Count.</summary>
    private void EmitEndWithEipOnStack()
    {
        var t = _il.DeclareLocal(typeof(uint));
        _il.Emit(OpCodes.Stloc, t);
        StoreField(FEip, () => _il.Emit(OpCodes.Ldloc, t));
        Spill(Snapshot());
        SyncIcount(_synced, _b.Count);
        Ldc(_b.Count);
        _il.Emit(OpCodes.Ret);
    }

    private void EmitEnd(uint eip)
    {
        Ldc((int)eip);
        EmitEndWithEipOnStack();
    }

    /// <summary>After an access returned its status in _status: 1 leaves through the fault exit, 2 sets _pend.</summary>
    private void CheckStatus(Label faultExit)
    {
        Label stub = _il.DefineLabel(), back = _il.DefineLabel();
        _il.Emit(OpCodes.Ldloc, _status);
        _il.Emit(OpCodes.Brtrue, stub);
        _il.MarkLabel(back);
        _usesPend = true;
        _deferred.Add(() =>
        {
            _il.MarkLabel(stub);
            _il.Emit(OpCodes.Ldloc, _status);
            _il.Emit(OpCodes.Ldc_I4_1);
            _il.Emit(OpCodes.Beq, faultExit);
            _il.Emit(OpCodes.Ldc_I4_1);
            _il.Emit(OpCodes.Stloc, _pend);
            _il.Emit(OpCodes.Br, back);
        });
    }

    /// <summary>At the end of an instruction that made a slow access: leave if the access asked the block to end.</summary>
    private void CheckPend(int i, uint? eip)
    {
        if (!_usesPend) return;
        _il.Emit(OpCodes.Ldloc, _pend);
        _il.Emit(OpCodes.Brtrue, ExitAt(i, Snapshot(), eip));
    }

    // ---- registers ----

    private void GprAddr(int r)
    {
        _il.Emit(OpCodes.Ldloc, _gpr);
        if (r != 0)
        {
            Ldc(r * 4);
            _il.Emit(OpCodes.Add);
        }
    }

    private void EnsureLoaded(int r)
    {
        if ((_loaded & (1 << r)) != 0) return;
        GprAddr(r);
        _il.Emit(OpCodes.Ldind_U4);
        _il.Emit(OpCodes.Stloc, _reg[r]);
        _loaded |= 1 << r;
    }

    /// <summary>Pushes register r at size bytes (8-bit 4-7 are AH, CH, DH, BH), as <see cref="X86Cpu.GetReg"/>.</summary>
    private void LoadReg(int r, int size)
    {
        if (size == 1 && r >= 4)
        {
            EnsureLoaded(r - 4);
            _il.Emit(OpCodes.Ldloc, _reg[r - 4]);
            Ldc(8);
            _il.Emit(OpCodes.Shr_Un);
            Ldc(0xFF);
            _il.Emit(OpCodes.And);
            return;
        }
        EnsureLoaded(r);
        _il.Emit(OpCodes.Ldloc, _reg[r]);
        if (size == 2) { Ldc(0xFFFF); _il.Emit(OpCodes.And); }
        else if (size == 1) { Ldc(0xFF); _il.Emit(OpCodes.And); }
    }

    /// <summary>Stores the value on the stack into register r at size bytes, as <see cref="X86Cpu.SetReg"/>.</summary>
    private void StoreReg(int r, int size)
    {
        if (size == 4)
        {
            _il.Emit(OpCodes.Stloc, _reg[r]);
            _loaded |= 1 << r;
            _dirty |= 1 << r;
            return;
        }
        var v = _il.DeclareLocal(typeof(uint));
        _il.Emit(OpCodes.Stloc, v);
        int full = size == 1 && r >= 4 ? r - 4 : r;
        EnsureLoaded(full);
        _il.Emit(OpCodes.Ldloc, _reg[full]);
        uint keep = size == 2 ? 0xFFFF0000u : r >= 4 ? 0xFFFF00FFu : 0xFFFFFF00u;
        Ldc((int)keep);
        _il.Emit(OpCodes.And);
        _il.Emit(OpCodes.Ldloc, v);
        Ldc(size == 2 ? 0xFFFF : 0xFF);
        _il.Emit(OpCodes.And);
        if (size == 1 && r >= 4) { Ldc(8); _il.Emit(OpCodes.Shl); }
        _il.Emit(OpCodes.Or);
        _il.Emit(OpCodes.Stloc, _reg[full]);
        _dirty |= 1 << full;
    }

    // ---- flags ----

    /// <summary>Records lazy flags from locals, as <see cref="X86Cpu.SetCcCarry"/>; carry may be null (unchanged).</summary>
    private void SetFlags(CcOp op, int size, LocalBuilder res, LocalBuilder? a, LocalBuilder? b, LocalBuilder? carry)
    {
        _il.Emit(OpCodes.Ldloc, res);
        _il.Emit(OpCodes.Stloc, _fRes);
        if (a != null) _il.Emit(OpCodes.Ldloc, a); else Ldc(0);
        _il.Emit(OpCodes.Stloc, _fA);
        if (b != null) _il.Emit(OpCodes.Ldloc, b); else Ldc(op is CcOp.Inc or CcOp.Dec ? 1 : 0);
        _il.Emit(OpCodes.Stloc, _fB);
        if (carry != null)
        {
            _il.Emit(OpCodes.Ldloc, carry);
            _il.Emit(OpCodes.Stloc, _fCarry);
        }
        _flagsLocal = true;
        _fop = op;
        _fsize = size;
    }

    /// <summary>Pushes CF as 0 or 1.</summary>
    private void LoadCarry()
    {
        if (_flagsLocal)
        {
            Ldc((int)_fop);
            Ldc(_fsize);
            LoadFlagOperands();
            _il.Emit(OpCodes.Call, MCarry);
        }
        else
        {
            _il.Emit(OpCodes.Ldarg_0);
            _il.Emit(OpCodes.Call, MCpuCarry);
        }
    }

    /// <summary>Pushes condition cc (0 or 1).</summary>
    private void LoadCondition(int cc)
    {
        if (_flagsLocal)
        {
            Ldc(cc);
            Ldc((int)_fop);
            Ldc(_fsize);
            LoadFlagOperands();
            _il.Emit(OpCodes.Call, MCond);
        }
        else
        {
            _il.Emit(OpCodes.Ldarg_0);
            Ldc(cc);
            _il.Emit(OpCodes.Call, MCpuCond);
        }
    }

    private void LoadFlagOperands()
    {
        _il.Emit(OpCodes.Ldloc, _fRes);
        _il.Emit(OpCodes.Ldloc, _fA);
        _il.Emit(OpCodes.Ldloc, _fB);
        _il.Emit(OpCodes.Ldloc, _fCarry);
    }

    // ---- helpers ----

    private void Ldc(int v) => _il.Emit(OpCodes.Ldc_I4, v);

    private void StoreField(FieldInfo f, Action value)
    {
        _il.Emit(OpCodes.Ldarg_0);
        value();
        _il.Emit(OpCodes.Stfld, f);
    }

    private LocalBuilder Temp() => _il.DeclareLocal(typeof(uint));
}
