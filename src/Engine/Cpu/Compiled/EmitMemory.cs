using System.Reflection;
using System.Reflection.Emit;
using Replayvisor.Engine.Cpu.Decode;
using Replayvisor.Engine.Memory;

namespace Replayvisor.Engine.Cpu.Compiled;

/// <summary>
/// Loads and stores. The TLB-hit path is emitted inline with the memory context in locals: the
/// RAM, TLB, code-line and dirty-frame arrays (fixed for a CPU), and the TLB keys and the bounds
/// of the segments the region accesses, which change only through what the region leaves the
/// compiled code for (a handler, a slow access), so they are loaded at entry and again after
/// those. The checks are those of the handlers' fast paths (<see cref="X86Cpu.RmwRef"/>: segment
/// bound, TLB entry and permission, one page, for stores no decoded code on the touched 64-byte
/// lines, then the dirty mark); everything else calls the checked slow path the handlers use
/// (<see cref="X86Cpu.ReadForWrite"/> for the read of a read-modify-write, so a #PF reports a write).
/// </summary>
internal sealed partial class BlockEmitter
{
    private LocalBuilder _ram = null!, _tlb = null!, _codeLines = null!, _dirtyFrames = null!, _keyR = null!, _keyW = null!, _csLimit = null!;
    // The region's translations access memory (otherwise neither the arrays nor the TLB keys are loaded);
    // it checks near branch targets against the CS limit or branches between members (otherwise the limit is not loaded).
    private bool _accessesMemory, _needsCsLimit;
    private readonly LocalBuilder?[] _segBase = new LocalBuilder?[Seg.Count], _segReadEnd = new LocalBuilder?[Seg.Count], _segWriteEnd = new LocalBuilder?[Seg.Count];

    private static readonly FieldInfo FKeyR = F("_tlbR"), FKeyW = F("_tlbW");

    private static readonly MethodInfo MRam = M(nameof(X86Cpu.JitRam)), MTlb = M(nameof(X86Cpu.JitTlb)), MCodeLines = M(nameof(X86Cpu.JitCodeLines)),
        MDirty = M(nameof(X86Cpu.JitDirty)), MSeg = M(nameof(X86Cpu.JitSeg));

    private static readonly FieldInfo FSegBase = SegField(nameof(SegmentCache.Base)), FSegLimit = SegField(nameof(SegmentCache.Limit)),
        FSegReadEnd = SegField(nameof(SegmentCache.ReadEnd)), FSegWriteEnd = SegField(nameof(SegmentCache.WriteEnd));

    private static FieldInfo SegField(string name) => typeof(SegmentCache).GetField(name) ?? throw new MissingFieldException(nameof(SegmentCache), name);

    private void DeclareMemoryContext()
    {
        _ram = _il.DeclareLocal(typeof(byte).MakeByRefType());
        _tlb = _il.DeclareLocal(typeof(ulong).MakeByRefType());
        _codeLines = _il.DeclareLocal(typeof(ulong).MakeByRefType());
        _dirtyFrames = _il.DeclareLocal(typeof(byte).MakeByRefType());
        _keyR = _il.DeclareLocal(typeof(ulong));
        _keyW = _il.DeclareLocal(typeof(ulong));
        _csLimit = _il.DeclareLocal(typeof(uint));
        int segs = _use.Segments;
        _accessesMemory = segs != 0;
        _needsCsLimit = _members.Length > 1 || _members.Any(EndsInNearBranch);
        for (int s = 0; s < Seg.Count; s++)
        {
            if ((segs & (1 << s)) == 0) continue;
            _segBase[s] = _il.DeclareLocal(typeof(uint));
            _segReadEnd[s] = _il.DeclareLocal(typeof(long));
            _segWriteEnd[s] = _il.DeclareLocal(typeof(long));
        }
    }

    /// <summary>At entry: the arrays, then what may change.</summary>
    private void LoadMemoryArrays()
    {
        if (!_accessesMemory) return;
        LoadVia(MRam, _ram);
        LoadVia(MTlb, _tlb);
        LoadVia(MCodeLines, _codeLines);
        LoadVia(MDirty, _dirtyFrames);
    }

    /// <summary>
    /// The TLB keys, the bounds of the segments the region accesses and the CS limit (at entry and
    /// after a handler; a slow access changes none of them: it loads no segment, and the keys change
    /// only with CPL or a TLB flush).
    /// </summary>
    private void LoadMemoryContext()
    {
        if (_accessesMemory)
        {
            LoadField(FKeyR, _keyR);
            LoadField(FKeyW, _keyW);
        }
        for (int s = 0; s < Seg.Count; s++)
        {
            if (_segBase[s] == null) continue;
            PushSeg(s);
            _il.Emit(OpCodes.Dup);
            _il.Emit(OpCodes.Ldfld, FSegBase);
            _il.Emit(OpCodes.Stloc, _segBase[s]!);
            _il.Emit(OpCodes.Dup);
            _il.Emit(OpCodes.Ldfld, FSegReadEnd);
            _il.Emit(OpCodes.Stloc, _segReadEnd[s]!);
            _il.Emit(OpCodes.Ldfld, FSegWriteEnd);
            _il.Emit(OpCodes.Stloc, _segWriteEnd[s]!);
        }
        if (!_needsCsLimit) return;
        PushSeg(Seg.CS);
        _il.Emit(OpCodes.Ldfld, FSegLimit);
        _il.Emit(OpCodes.Stloc, _csLimit);
    }

    /// <summary>The block's last instruction is a translated near branch (its target is checked against the CS limit).</summary>
    private static bool EndsInNearBranch(Block b) =>
        Classify(ref b.Insns[b.Count - 1], true) is Form.Jmp or Form.Jcc or Form.Call or Form.CallIndirect or Form.JmpIndirect or Form.Ret;

    /// <summary>Pushes a reference to the segment cache of seg.</summary>
    private void PushSeg(int seg)
    {
        _il.Emit(OpCodes.Ldarg_0);
        Ldc(seg);
        _il.Emit(OpCodes.Call, MSeg);
    }

    private void LoadVia(MethodInfo m, LocalBuilder to)
    {
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Call, m);
        _il.Emit(OpCodes.Stloc, to);
    }


    /// <summary>
    /// Pushes the value read from seg:ea; when the fast path does not apply, leaves the region at
    /// the instruction's start (see <see cref="SlowExit"/>). forWrite: the read of a
    /// read-modify-write (<see cref="X86Cpu.ReadForWrite"/>: the fast path needs write permission
    /// and no code on the bytes).
    /// </summary>
    private void ReadMem(Ctx c, int seg, LocalBuilder ea, int size, bool forWrite = false)
    {
        Label slow = SlowExit(c);
        var (lin, e) = EmitTlbHit(seg, ea, size, forWrite, slow);
        if (forWrite) CheckNoCode(e, lin, size, slow);
        PhysRef(e, lin);
        Load(size);
    }

    private void WriteMem(Ctx c, int seg, LocalBuilder ea, int size, LocalBuilder v)
    {
        Label slow = SlowExit(c);
        var (lin, e) = EmitTlbHit(seg, ea, size, true, slow);
        CheckNoCode(e, lin, size, slow);
        // MarkDirty: the frame's dirty byte for the incremental state hash
        _il.Emit(OpCodes.Ldloc, _dirtyFrames);
        FrameIndex(e);
        _il.Emit(OpCodes.Add);
        Ldc(1);
        _il.Emit(OpCodes.Stind_I1);
        PhysRef(e, lin);
        _il.Emit(OpCodes.Ldloc, v);
        Store(size);
    }

    /// <summary>
    /// Where an access that the inline path does not handle (TLB miss, permission, A/D update,
    /// page crossing, segment bound, store to code) goes: out of the region at the start of the
    /// instruction, in the state it started in (a translation changes registers and flags only
    /// after all of its accesses succeeded, and an earlier store of the same instruction is made
    /// again, to the same bytes), with no exit flag set; the run loop runs the rest of the block
    /// from that instruction under the block cache (<see cref="X86Cpu"/> ExecCompiledEnd). No
    /// call into the CPU is emitted for an access, so no local of the region lives across one
    /// there: the .NET JIT keeps the memory context in registers on the hot path without
    /// reloading it after a call (docs/compiled-tier.md, "Inline TLB hit").
    /// </summary>
    private static Label SlowExit(Ctx c) => c.Fault();

    /// <summary>
    /// The segment bound, TLB entry and page checks of the fast path (branching to slow when one
    /// fails); returns the locals holding the linear address and the TLB entry.
    /// </summary>
    private (LocalBuilder Lin, LocalBuilder E) EmitTlbHit(int seg, LocalBuilder ea, int size, bool write, Label slow)
    {
        var lin = Temp();
        var e = Temp64();
        // (long)ea + size <= ReadEnd/WriteEnd
        _il.Emit(OpCodes.Ldloc, ea);
        _il.Emit(OpCodes.Conv_U8);
        Ldc(size);
        _il.Emit(OpCodes.Conv_I8);
        _il.Emit(OpCodes.Add);
        _il.Emit(OpCodes.Ldloc, write ? _segWriteEnd[seg]! : _segReadEnd[seg]!);
        _il.Emit(OpCodes.Bgt, slow);
        _il.Emit(OpCodes.Ldloc, _segBase[seg]!);
        _il.Emit(OpCodes.Ldloc, ea);
        _il.Emit(OpCodes.Add);
        _il.Emit(OpCodes.Stloc, lin);
        // e = TLB[lin >> 12]; (e & (GenMask | key)) == key
        _il.Emit(OpCodes.Ldloc, _tlb);
        _il.Emit(OpCodes.Ldloc, lin);
        Ldc(12);
        _il.Emit(OpCodes.Shr_Un);
        Ldc(3);
        _il.Emit(OpCodes.Shl);
        _il.Emit(OpCodes.Conv_U);
        _il.Emit(OpCodes.Add);
        _il.Emit(OpCodes.Ldind_I8);
        _il.Emit(OpCodes.Stloc, e);
        var key = write ? _keyW : _keyR;
        _il.Emit(OpCodes.Ldloc, e);
        _il.Emit(OpCodes.Ldc_I8, unchecked((long)X86Cpu.GenMask));
        _il.Emit(OpCodes.Ldloc, key);
        _il.Emit(OpCodes.Or);
        _il.Emit(OpCodes.And);
        _il.Emit(OpCodes.Ldloc, key);
        _il.Emit(OpCodes.Bne_Un, slow);
        if (size > 1)
        {
            // within one page: (lin & 0xFFF) <= 0x1000 - size
            _il.Emit(OpCodes.Ldloc, lin);
            Ldc(0xFFF);
            _il.Emit(OpCodes.And);
            Ldc(0x1000 - size);
            _il.Emit(OpCodes.Bgt_Un, slow);
        }
        return (lin, e);
    }

    /// <summary>No decoded code on the 64-byte lines of [lin, lin+size) in e's frame (PhysicalMemory code lines), else slow.</summary>
    private void CheckNoCode(LocalBuilder e, LocalBuilder lin, int size, Label slow)
    {
        _il.Emit(OpCodes.Ldloc, _codeLines);
        FrameIndex(e);
        Ldc(3);
        _il.Emit(OpCodes.Shl);
        _il.Emit(OpCodes.Add);
        _il.Emit(OpCodes.Ldind_I8);
        LineBit(lin, 0);
        if (size > 1)
        {
            LineBit(lin, size - 1);
            _il.Emit(OpCodes.Or);
        }
        _il.Emit(OpCodes.And);
        _il.Emit(OpCodes.Brtrue, slow);
    }

    /// <summary>Pushes 1ul &lt;&lt; (((lin &amp; 0xFFF) + add) >> CodeLineShift).</summary>
    private void LineBit(LocalBuilder lin, int add)
    {
        _il.Emit(OpCodes.Ldc_I8, 1L);
        _il.Emit(OpCodes.Ldloc, lin);
        Ldc(0xFFF);
        _il.Emit(OpCodes.And);
        if (add != 0)
        {
            Ldc(add);
            _il.Emit(OpCodes.Add);
        }
        Ldc(PhysicalMemory.CodeLineShift);
        _il.Emit(OpCodes.Shr_Un);
        _il.Emit(OpCodes.Shl);
    }

    /// <summary>Pushes (e &amp; FrameMask) >> 12 as a native unsigned int.</summary>
    private void FrameIndex(LocalBuilder e)
    {
        _il.Emit(OpCodes.Ldloc, e);
        _il.Emit(OpCodes.Ldc_I8, unchecked((long)X86Cpu.FrameMask));
        _il.Emit(OpCodes.And);
        Ldc(12);
        _il.Emit(OpCodes.Shr_Un);
        _il.Emit(OpCodes.Conv_U);
    }

    /// <summary>Pushes a reference to RAM at (e &amp; FrameMask) | (lin &amp; 0xFFF).</summary>
    private void PhysRef(LocalBuilder e, LocalBuilder lin)
    {
        _il.Emit(OpCodes.Ldloc, _ram);
        _il.Emit(OpCodes.Ldloc, e);
        _il.Emit(OpCodes.Ldc_I8, unchecked((long)X86Cpu.FrameMask));
        _il.Emit(OpCodes.And);
        _il.Emit(OpCodes.Ldloc, lin);
        Ldc(0xFFF);
        _il.Emit(OpCodes.And);
        _il.Emit(OpCodes.Conv_U8);
        _il.Emit(OpCodes.Or);
        _il.Emit(OpCodes.Conv_U);
        _il.Emit(OpCodes.Add);
    }

    private void Load(int size)
    {
        if (size > 1) _il.Emit(OpCodes.Unaligned, (byte)1);
        _il.Emit(size == 4 ? OpCodes.Ldind_U4 : size == 2 ? OpCodes.Ldind_U2 : OpCodes.Ldind_U1);
    }

    private void Store(int size)
    {
        if (size > 1) _il.Emit(OpCodes.Unaligned, (byte)1);
        _il.Emit(size == 4 ? OpCodes.Stind_I4 : size == 2 ? OpCodes.Stind_I2 : OpCodes.Stind_I1);
    }
}
