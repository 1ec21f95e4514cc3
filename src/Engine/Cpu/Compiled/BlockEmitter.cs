using System.Reflection;
using System.Reflection.Emit;
using Replayvisor.Engine.Cpu.Decode;

namespace Replayvisor.Engine.Cpu.Compiled;

/// <summary>
/// Emits one region (<see cref="CompiledRegion"/>): the state the compiler tracks between
/// instructions (which guest registers are in locals and which of those changed, where the flags
/// are, how far Icount is stored), the branches between members, and the exits. Every member
/// starts in one state: all registers in locals (those the region writes counted as changed), the
/// flags' operands and operation in locals. Exits are emitted out of line after the
/// straight-line body, with the state as it was at their branch, so the common path carries no
/// spill code.
/// </summary>
internal sealed partial class BlockEmitter
{
    private readonly ILGenerator _il;
    private readonly Block[] _members;
    private readonly Label[] _starts;
    private readonly LocalBuilder[] _reg = new LocalBuilder[8];
    private readonly LocalBuilder _gpr, _fRes, _fA, _fB, _fCarry, _fOp, _fSize;
    // What an exit hands its shared spill tail (ExitAt): the result code, the instructions retired since Icount was stored, EIP.
    private readonly LocalBuilder _exitCode, _exitRetired, _exitEip;
    // The registers the region's translations write (changed at every member's start), and those they use (in locals at every member's start).
    private readonly RegionUse _use;
    private readonly int _written, _used;
    // No translated instruction of the region sets flags: they stay in the CPU's lazy fields throughout.
    private readonly bool _flagsInCpu;

    // The member being emitted.
    private Block _b = null!;
    private int _k;
    // Registers whose locals hold the guest value, and those changed since the last store to Gpr.
    private int _loaded, _dirty;
    private FlagState _flags;
    private CcOp _fop;
    private int _fsize;
    // Icount holds the count at the start of instruction _synced.
    private int _synced;
    // A handler ran in this member: what it may have changed (TF, DR7, SS, a stop) is checked by the run loop, so the member ends there.
    private bool _handlerRan;

    /// <summary>Where the arithmetic flags are.</summary>
    private enum FlagState
    {
        /// <summary>In the CPU's lazy fields (<see cref="X86Cpu.CcKind"/>...).</summary>
        Cpu,
        /// <summary>Operands in _fRes/_fA/_fB/_fCarry, operation and size known at compile time (_fop, _fsize).</summary>
        Local,
        /// <summary>Operands in locals, operation and size in the locals _fOp/_fSize (at a member's start).</summary>
        Dynamic,
    }

    /// <summary>Registers the emitted code stored into a local (checked against the written set by the compiler).</summary>
    public int RegistersStored { get; private set; }

    private readonly List<Action> _deferred = new();

    private static readonly FieldInfo FEip = F(nameof(X86Cpu.Eip)), FInsnEip = F(nameof(X86Cpu.InsnEip)),
        FExit = F(nameof(X86Cpu.Exit)), FIcount = F("_icount"), FCcKind = F(nameof(X86Cpu.CcKind)),
        FCcSize = F(nameof(X86Cpu.CcSize)), FCcRes = F(nameof(X86Cpu.CcRes)), FCcA = F(nameof(X86Cpu.CcA)),
        FCcB = F(nameof(X86Cpu.CcB)), FCcCarry = F(nameof(X86Cpu.CcCarry)), FStopAt = F("_stopAt"),
        FChainEpoch = F(nameof(X86Cpu.ChainEpoch));

    private static readonly FieldInfo FInsns = typeof(Block).GetField(nameof(Block.Insns))!;

    private static readonly MethodInfo MHandler = M(nameof(X86Cpu.JitHandler)), MGpr = M(nameof(X86Cpu.JitGpr)),
        MStack32 = M(nameof(X86Cpu.JitStack32)), MCond = M(nameof(X86Cpu.JitCond)), MCarry = M(nameof(X86Cpu.JitCarry)),
        MCpuCarry = M(nameof(X86Cpu.JitCpuCarry)), MCpuCond = M(nameof(X86Cpu.JitCpuCond)), MRaiseGp = M(nameof(X86Cpu.JitRaiseGp));

    private static FieldInfo F(string name) =>
        typeof(X86Cpu).GetField(name, BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance)
        ?? throw new MissingFieldException(nameof(X86Cpu), name);

    private static MethodInfo M(string name) =>
        typeof(X86Cpu).GetMethod(name, BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)
        ?? throw new MissingMethodException(nameof(X86Cpu), name);

    /// <param name="use">What the members' translations use (<see cref="Scan"/>).</param>
    /// <param name="written">The registers stored at the exits: <paramref name="use"/>'s written ones, or all of them.</param>
    public BlockEmitter(ILGenerator il, Block[] members, RegionUse use, int written)
    {
        _il = il;
        _members = members;
        _use = use;
        _written = written;
        _used = use.Used | written;
        _flagsInCpu = !use.SetsFlags;
        _starts = new Label[members.Length];
        for (int k = 0; k < members.Length; k++) _starts[k] = il.DefineLabel();
        for (int r = 0; r < 8; r++) _reg[r] = il.DeclareLocal(typeof(uint));
        _gpr = il.DeclareLocal(typeof(uint).MakeByRefType());
        _fRes = il.DeclareLocal(typeof(uint));
        _fA = il.DeclareLocal(typeof(uint));
        _fB = il.DeclareLocal(typeof(uint));
        _fCarry = il.DeclareLocal(typeof(uint));
        _fOp = il.DeclareLocal(typeof(int));
        _fSize = il.DeclareLocal(typeof(int));
        _exitCode = il.DeclareLocal(typeof(int));
        _exitRetired = il.DeclareLocal(typeof(int));
        _exitEip = il.DeclareLocal(typeof(uint));
        DeclareMemoryContext();
    }

    public void Emit()
    {
        // Entry: SS.B cannot change inside the region without a handler, and a member that ran one ends the run.
        if (_members.Any(NeedsStack32))
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
        _loaded = 0;
        LoadUsedRegisters();
        if (!_flagsInCpu) LoadFlagsFromCpu();
        LoadMemoryArrays();
        LoadMemoryContext();
        ForbidBranchesPastCsLimit();
        if (_members.Length > 1)
        {
            // Start at the entry member (0 falls through to the head).
            _il.Emit(OpCodes.Ldarg_3);
            _il.Emit(OpCodes.Switch, _starts);
        }
        for (int k = 0; k < _members.Length; k++)
        {
            _k = k;
            _b = _members[k];
            _il.MarkLabel(_starts[k]);
            _loaded = _used;
            _dirty = _written;
            _flags = _flagsInCpu ? FlagState.Cpu : FlagState.Dynamic;
            _synced = 0;
            _handlerRan = false;
            bool ended = false;
            for (int i = 0; i < _b.Count; i++)
            {
                ref DecodedInsn d = ref _b.Insns[i];
                ResetTemps();
                ended = EmitInstruction(i, ref d, i == _b.Count - 1);
            }
            if (!ended) EmitTransfer(_b.EndEip);
        }
        foreach (var a in _deferred) a();
        foreach (var (tail, label) in _tails) EmitTail(tail, label);
    }

    /// <summary>
    /// The run loop enters a cached block only when all of it lies within the CS limit (FetchBlock);
    /// the head passed that check. CS cannot change while the region runs (a handler that changes
    /// it ends the member), so when the limit does not cover every member now, no branch between
    /// members is taken (chainEpoch := ulong.MaxValue) and each member is entered by the run loop.
    /// </summary>
    private void ForbidBranchesPastCsLimit()
    {
        if (_members.Length == 1) return; // the head alone: no branch between members
        uint last = _members.Max(b => b.EndEip - 1); // the entry member passed the check, but it may not be the head
        Label ok = _il.DefineLabel();
        _il.Emit(OpCodes.Ldloc, _csLimit);
        Ldc((int)last);
        _il.Emit(OpCodes.Bge_Un, ok);
        _il.Emit(OpCodes.Ldc_I8, -1L);
        _il.Emit(OpCodes.Starg_S, (byte)2);
        _il.MarkLabel(ok);
    }

    /// <summary>The result code of member _k at instruction i.</summary>
    private int Result(int i) => CompiledRegion.Result(_k, i);

    // ---- between members ----

    /// <summary>Where a member may continue inside its region: direct branch targets, fall-through, and a call's return address.</summary>
    public static List<uint> StaticSuccessors(Block b)
    {
        var list = new List<uint>(2);
        if (!b.Chainable || !b.Code32) return list;
        for (int i = 0; i < b.Count; i++)
            if (Classify(ref b.Insns[i], i == b.Count - 1) == Form.Handler && !LinkingHandlers.KeepsLinking(ref b.Insns[i])) return list;
        ref DecodedInsn last = ref b.Insns[b.Count - 1];
        switch (Classify(ref last, true))
        {
            case Form.Jmp: list.Add(Target(ref last)); break;
            case Form.Jcc: list.Add(Target(ref last)); list.Add(last.NextEip); break;
            case Form.Call: list.Add(last.Imm); list.Add(last.NextEip); break;
            case Form.CallIndirect: list.Add(last.NextEip); break;
            case Form.Ret: case Form.JmpIndirect: break;
            default: list.Add(b.EndEip); break;
        }
        return list;
    }

    private static uint Target(ref DecodedInsn d) => d.Size == 2 ? d.Imm & 0xFFFF : d.Imm;

    /// <summary>Loads the used registers not loaded yet.</summary>
    private void LoadUsedRegisters()
    {
        for (int r = 0; r < 8; r++)
            if ((_used & (1 << r)) != 0) EnsureLoaded(r);
    }

    private static int RegBit(byte r, int size) => r >= 8 ? 0 : 1 << (size == 1 && r >= 4 ? r - 4 : r);

    /// <summary>
    /// The member ends and control goes to target: to the member starting there, if any, while the
    /// chain epoch is unchanged and it fits the budget; otherwise out with EIP = target.
    /// </summary>
    private void EmitTransfer(uint target)
    {
        int m = Array.FindIndex(_members, b => b.Eip == target);
        if (m < 0 || _handlerRan)
        {
            EmitEnd(target);
            return;
        }
        EmitBranchToMember(m, target);
    }

    /// <summary>A return (or indirect call's return) to the address in t: to a member starting there (a call's return address), else out.</summary>
    private void EmitDynamicTransfer(LocalBuilder t)
    {
        if (!_handlerRan)
            for (int m = 0; m < _members.Length; m++)
            {
                if (!IsReturnSite(_members[m].Eip)) continue;
                Label other = _il.DefineLabel();
                _il.Emit(OpCodes.Ldloc, t);
                Ldc((int)_members[m].Eip);
                _il.Emit(OpCodes.Bne_Un, other);
                EmitBranchToMember(m, _members[m].Eip);
                _il.MarkLabel(other);
            }
        _il.Emit(OpCodes.Ldloc, t);
        EmitEndWithEipOnStack();
    }

    private bool IsReturnSite(uint eip)
    {
        foreach (var b in _members)
        {
            var f = Classify(ref b.Insns[b.Count - 1], true);
            if (f is Form.Call or Form.CallIndirect && b.Insns[b.Count - 1].NextEip == eip) return true;
        }
        return false;
    }

    /// <summary>
    /// Counts the member, then branches to member m's start (the used registers in locals, flags in
    /// the dynamic locals, or in the CPU when no translation of the region sets them) when the chain epoch (TLB, and so the page's translation) is unchanged
    /// and member m fits the budget; otherwise leaves with EIP = target. Changes no tracked state.
    /// </summary>
    private void EmitBranchToMember(int m, uint target)
    {
        // Registers a pure handler left in the CPU are loaded on this path only (a jcc's other path or a
        // ret's next compare loads them again): _loaded is restored below.
        int loaded = _loaded;
        LoadUsedRegisters();
        SyncIcount(_synced, _b.Count);
        Label exit = ExitAt(_b.Count, Snapshot() with { Synced = _b.Count }, target);
        _il.Emit(OpCodes.Ldarg_2);
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Ldfld, FChainEpoch);
        _il.Emit(OpCodes.Bne_Un, exit);
        // _icount + Count <= _stopAt (a host may lower _stopAt below _icount: StopAtCurrentCount)
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Ldfld, FIcount);
        Ldc(_members[m].Count);
        _il.Emit(OpCodes.Conv_I8);
        _il.Emit(OpCodes.Add);
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Ldfld, FStopAt);
        _il.Emit(OpCodes.Bgt_Un, exit);
        FlagsToDynamic();
        _il.Emit(OpCodes.Br, _starts[m]);
        _loaded = loaded;
    }

    /// <summary>Puts the flags as they are now into the dynamic locals (operation and size in _fOp/_fSize); changes no tracked state.</summary>
    private void FlagsToDynamic()
    {
        if (_flagsInCpu) return; // every member starts with the flags in the CPU
        switch (_flags)
        {
            case FlagState.Local:
                Ldc((int)_fop); _il.Emit(OpCodes.Stloc, _fOp);
                Ldc(_fsize); _il.Emit(OpCodes.Stloc, _fSize);
                break;
            case FlagState.Cpu:
                LoadFlagsFromCpu();
                break;
        }
    }

    /// <summary>The CPU's lazy flag fields into the flag locals (the dynamic state).</summary>
    private void LoadFlagsFromCpu()
    {
        LoadField(FCcKind, _fOp);
        LoadField(FCcSize, _fSize);
        LoadField(FCcRes, _fRes);
        LoadField(FCcA, _fA);
        LoadField(FCcB, _fB);
        LoadField(FCcCarry, _fCarry);
    }

    private void LoadField(FieldInfo f, LocalBuilder to)
    {
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Ldfld, f);
        _il.Emit(OpCodes.Stloc, to);
    }

    // ---- state snapshots and exits ----

    private readonly record struct State(int Dirty, FlagState Flags, CcOp Op, int Size, int Synced);

    private State Snapshot() => new(_dirty, _flags, _fop, _fsize, _synced);

    /// <summary>Stores what a state holds in locals into the CPU (registers, lazy flags).</summary>
    private void Spill(State s)
    {
        SpillRegisters(s.Dirty);
        SpillFlags(s);
    }

    private void SpillRegisters(int dirty)
    {
        for (int r = 0; r < 8; r++)
        {
            if ((dirty & (1 << r)) == 0) continue;
            GprAddr(r);
            _il.Emit(OpCodes.Ldloc, _reg[r]);
            _il.Emit(OpCodes.Stind_I4);
        }
    }

    /// <summary>The lazy-flag operations whose handlers store CcCarry (<see cref="X86Cpu.SetCcCarry"/>); the others leave it as it was.</summary>
    private static bool SetsCarry(CcOp op) => op is CcOp.Adc or CcOp.Sbb or CcOp.Inc or CcOp.Dec or CcOp.Mul;

    private void SpillFlags(State s)
    {
        switch (s.Flags)
        {
            case FlagState.Local:
                StoreField(FCcKind, () => Ldc((int)s.Op));
                StoreField(FCcSize, () => Ldc(s.Size));
                StoreField(FCcRes, () => _il.Emit(OpCodes.Ldloc, _fRes));
                StoreField(FCcA, () => _il.Emit(OpCodes.Ldloc, _fA));
                StoreField(FCcB, () => _il.Emit(OpCodes.Ldloc, _fB));
                if (SetsCarry(s.Op)) StoreField(FCcCarry, () => _il.Emit(OpCodes.Ldloc, _fCarry));
                break;
            case FlagState.Dynamic:
                SpillFlagLocals(true);
                break;
        }
    }

    /// <summary>
    /// The flag locals into the CPU's lazy fields, operation and size from _fOp/_fSize. CcCarry only
    /// with carry: in the dynamic state it is stored too (it is read only for the operations that
    /// set it, so an older value stored with another operation is never read).
    /// </summary>
    private void SpillFlagLocals(bool carry)
    {
        StoreField(FCcKind, () => _il.Emit(OpCodes.Ldloc, _fOp));
        StoreField(FCcSize, () => _il.Emit(OpCodes.Ldloc, _fSize));
        StoreField(FCcRes, () => _il.Emit(OpCodes.Ldloc, _fRes));
        StoreField(FCcA, () => _il.Emit(OpCodes.Ldloc, _fA));
        StoreField(FCcB, () => _il.Emit(OpCodes.Ldloc, _fB));
        if (carry) StoreField(FCcCarry, () => _il.Emit(OpCodes.Ldloc, _fCarry));
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

    /// <summary>
    /// A label that leaves at instruction i in state s: spill, count the earlier instructions, store
    /// EIP if given (a constant or a local), return. The exit only sets the result code, the count
    /// and EIP (and, for flags known at compile time, their operation and size) in locals and
    /// branches to a spill tail shared by every exit of the region that spills the same registers
    /// and flag fields (<see cref="ExitTail"/>): spilling eight registers and six flag fields at
    /// each of a region's exits made up most of its IL, and the .NET JIT's time grows with the IL.
    /// </summary>
    private Label ExitAt(int i, State s, uint? eip, LocalBuilder? eipLocal = null)
    {
        Label l = _il.DefineLabel();
        int code = Result(i), retired = i - s.Synced;
        _deferred.Add(() =>
        {
            _il.MarkLabel(l);
            if (eip is uint e) Ldc((int)e);
            if (eipLocal != null) _il.Emit(OpCodes.Ldloc, eipLocal);
            BranchToTail(code, retired, s, eip != null || eipLocal != null);
        });
        return l;
    }

    /// <summary>
    /// Sets the exit's locals (result code, instructions retired since Icount was stored, EIP from
    /// the stack when storesEip; the flags' operation and size when known at compile time) and
    /// branches to the spill tail for state s.
    /// </summary>
    private void BranchToTail(int code, int retired, State s, bool storesEip)
    {
        if (storesEip) _il.Emit(OpCodes.Stloc, _exitEip);
        Ldc(code);
        _il.Emit(OpCodes.Stloc, _exitCode);
        Ldc(retired);
        _il.Emit(OpCodes.Stloc, _exitRetired);
        if (s.Flags == FlagState.Local)
        {
            Ldc((int)s.Op); _il.Emit(OpCodes.Stloc, _fOp);
            Ldc(s.Size); _il.Emit(OpCodes.Stloc, _fSize);
        }
        var flags = s.Flags switch
        {
            FlagState.Cpu => TailFlags.None,
            FlagState.Local when !SetsCarry(s.Op) => TailFlags.NoCarry,
            _ => TailFlags.All,
        };
        _il.Emit(OpCodes.Br, TailLabel(new ExitTail(s.Dirty, flags, storesEip)));
    }

    /// <summary>Which lazy-flag fields a spill tail stores from the flag locals (operation and size included).</summary>
    private enum TailFlags { None, NoCarry, All }

    /// <summary>A spill tail: the registers it stores, the flag fields, whether it stores EIP (its counts come from locals).</summary>
    private readonly record struct ExitTail(int Dirty, TailFlags Flags, bool StoresEip);

    private readonly Dictionary<ExitTail, Label> _tails = new();

    private Label TailLabel(ExitTail tail)
    {
        if (!_tails.TryGetValue(tail, out Label l)) _tails[tail] = l = _il.DefineLabel();
        return l;
    }

    private void EmitTail(ExitTail tail, Label l)
    {
        _il.MarkLabel(l);
        SpillRegisters(tail.Dirty);
        if (tail.Flags != TailFlags.None) SpillFlagLocals(tail.Flags == TailFlags.All);
        if (tail.StoresEip) StoreField(FEip, () => _il.Emit(OpCodes.Ldloc, _exitEip));
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Ldfld, FIcount);
        _il.Emit(OpCodes.Ldloc, _exitRetired);
        _il.Emit(OpCodes.Conv_I8);
        _il.Emit(OpCodes.Add);
        _il.Emit(OpCodes.Stfld, FIcount);
        _il.Emit(OpCodes.Ldloc, _exitCode);
        _il.Emit(OpCodes.Ret);
    }

    /// <summary>The normal end: EIP is on the stack; spill, count the whole member, return (through a shared tail).</summary>
    private void EmitEndWithEipOnStack() => BranchToTail(Result(_b.Count), _b.Count - _synced, Snapshot(), true);

    private void EmitEnd(uint eip)
    {
        Ldc((int)eip);
        EmitEndWithEipOnStack();
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
            RegistersStored |= 1 << r;
            return;
        }
        var v = Temp();
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
        RegistersStored |= 1 << full;
    }

    // ---- flags ----

    /// <summary>Records lazy flags from locals, as <see cref="X86Cpu.SetCcCarry"/>; carry may be null (unchanged).</summary>
    private void SetFlags(CcOp op, int size, LocalBuilder res, LocalBuilder? a, LocalBuilder? b, LocalBuilder? carry)
    {
        if (_flagsInCpu) throw new InvalidOperationException("a translation that sets flags is missing from the flag-leaving forms of BlockEmitter.Scan");
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
        _flags = FlagState.Local;
        _fop = op;
        _fsize = size;
    }

    /// <summary>Flags read at a member's start (operation not known at compile time) are read from the CPU's fields.</summary>
    private void SpillDynamicFlags()
    {
        if (_flags != FlagState.Dynamic) return;
        SpillFlags(Snapshot());
        _flags = FlagState.Cpu;
    }

    // ---- helpers ----

    /// <summary>Pushes an int constant in the shortest encoding.</summary>
    private void Ldc(int v)
    {
        if (v is >= -1 and <= 8) _il.Emit(v switch
        {
            -1 => OpCodes.Ldc_I4_M1, 0 => OpCodes.Ldc_I4_0, 1 => OpCodes.Ldc_I4_1, 2 => OpCodes.Ldc_I4_2, 3 => OpCodes.Ldc_I4_3,
            4 => OpCodes.Ldc_I4_4, 5 => OpCodes.Ldc_I4_5, 6 => OpCodes.Ldc_I4_6, 7 => OpCodes.Ldc_I4_7, _ => OpCodes.Ldc_I4_8,
        });
        else if (v is >= sbyte.MinValue and <= sbyte.MaxValue) _il.Emit(OpCodes.Ldc_I4_S, (sbyte)v);
        else _il.Emit(OpCodes.Ldc_I4, v);
    }

    private void StoreField(FieldInfo f, Action value)
    {
        _il.Emit(OpCodes.Ldarg_0);
        value();
        _il.Emit(OpCodes.Stfld, f);
    }

    // Temporaries live within one instruction (an exit stub runs only from its own instruction), so
    // each instruction reuses the same locals: a region's method keeps few locals, which the .NET
    // JIT can all track and keep in registers.
    private readonly List<LocalBuilder> _temps = new(), _temps64 = new();
    private int _nextTemp, _nextTemp64;

    private void ResetTemps() => _nextTemp = _nextTemp64 = 0;

    private LocalBuilder Temp()
    {
        if (_nextTemp == _temps.Count) _temps.Add(_il.DeclareLocal(typeof(uint)));
        return _temps[_nextTemp++];
    }

    private LocalBuilder Temp64()
    {
        if (_nextTemp64 == _temps64.Count) _temps64.Add(_il.DeclareLocal(typeof(ulong)));
        return _temps64[_nextTemp64++];
    }
}
