using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Iced.Intel;
using Replayvisor.Engine.Cpu.Decode;

namespace Replayvisor.Engine.Cpu;

public enum StopReason
{
    /// <summary>The instruction count reached the requested stop count exactly.</summary>
    InstructionLimit,
    /// <summary>The host asked the CPU to stop (shutdown, halt with nothing to wait for, a breakpoint...).</summary>
    Stopped,
    /// <summary>An instruction outside the implemented set (x87/SSE arithmetic); see <see cref="X86Cpu.StopMessage"/>.</summary>
    Unsupported,
}

/// <summary>How <see cref="X86Cpu.RetireEmulated"/> counts an instruction that faulted and was then completed by the hypervisor.</summary>
public enum EmulatedInstruction
{
    /// <summary>A store to a page-table page that Xen's writable-pagetable emulation performed (#PF): counts one.</summary>
    PagetableWrite,
    /// <summary>A privileged instruction (I/O, cli/sti, mov cr, rdmsr...) emulated after #GP(0): counts zero.</summary>
    PrivilegedOp,
    /// <summary>The forced-emulation CPUID (ud2; "xen"; cpuid) emulated after #UD: counts zero.</summary>
    ForcedCpuid,
}

/// <summary>
/// The run loop.
/// <para><b>Instruction counting</b> (the one definition; docs/architecture.md, "The determinism
/// contract"). <see cref="Icount"/> has one writer, this CPU, and these rules:</para>
/// <list type="number">
/// <item>Every instruction the CPU completes counts one, including instructions that complete by
/// raising a trap-class event (int n, int3, into with OF set, int 0x82 hypercalls, single-step #DB).</item>
/// <item>A faulting instruction does not complete and does not count; neither does the delivery of
/// any exception.</item>
/// <item>A rep-prefixed string instruction counts one per completed iteration (one when its count
/// is zero); a fault in an iteration leaves the earlier iterations counted. The CPU can stop at any
/// count exactly, including between two iterations (which are architecturally interruptible).</item>
/// <item>An instruction that faulted and that the hypervisor then completes on the guest's behalf
/// is counted by <see cref="RetireEmulated"/>: one for a writable-pagetable store (the guest's
/// store happened, as if the CPU had done it), zero for privileged-instruction emulation and the
/// forced-emulation CPUID (the guest sees a trip through Xen). This split is what every recorded
/// trace was made with, so it is part of the trace format.</item>
/// </list>
/// </summary>
public sealed partial class X86Cpu
{
    private readonly BlockCache _blocks;
    private ulong _stopAt;

    /// <summary>How guest code runs; every tier gives the same results (see <see cref="CpuTier"/>).</summary>
    public CpuTier Tier { get; set; } = CpuTier.BlockCache;

    /// <summary>Decode through the block cache (true: the block-cache tier) or one instruction at a time (the plain interpreter).</summary>
    public bool UseBlockCache
    {
        get => Tier != CpuTier.Interpreter;
        set => Tier = value ? CpuTier.BlockCache : CpuTier.Interpreter;
    }

    /// <summary>Compiled tier: a cached block is compiled after it ran this many times under the block cache (0: before its first run).</summary>
    public int CompileThreshold { get; set; } = DefaultCompileThreshold;

    /// <summary>
    /// Compiled tier: a cached block that ran this many times (and fewer than <see cref="CompileThreshold"/>)
    /// takes the code of a region with its head that a machine of this process already compiled, if
    /// the region's blocks are all cached here with the same bytes (BlockCompiler.Reuse): binding code
    /// costs a delegate, compiling it ~1 ms of .NET JIT per block (docs/compiled-tier.md, "Compile cost").
    /// </summary>
    public int ReuseThreshold { get; set; } = DefaultReuseThreshold;

    /// <summary>
    /// A compile pays for itself only after ~300,000 instructions run in its region (docs/compiled-tier.md,
    /// "Compile cost"); a region already compiled in the process is bound much sooner.
    /// </summary>
    public const int DefaultCompileThreshold = 1000, DefaultReuseThreshold = 50;

    /// <summary>Compiled tier: blocks compiled so far (each time a region includes them) and the IL bytes emitted for them.</summary>
    public long BlocksCompiled { get; private set; }
    public long CompiledIlBytes { get; private set; }
    /// <summary>Compiled tier: blocks whose region took code another region with the same bytes had compiled (in any machine of this process).</summary>
    public long CompiledCodeReused { get; private set; }

    /// <summary>Blocks of regions bound to a block that is a member of them, entered at that member (BlockCompiler.Enter).</summary>
    public long CompiledCodeEntered { get; private set; }

    public BlockCache Blocks => _blocks;

    /// <summary>Why the last <see cref="Run"/> stopped with <see cref="StopReason.Unsupported"/>.</summary>
    public string? StopMessage { get; private set; }

    /// <summary>Instructions left before the stop count; rep-string handlers use it to stop between iterations.</summary>
    internal ulong Budget => _stopAt - _icount;

    /// <summary>
    /// Counts <paramref name="iterations"/> completed iterations of a rep string instruction beyond
    /// the one the run loop counts when the instruction ends (or, after a fault, all of them).
    /// </summary>
    internal void RetireIterations(ulong iterations) => _icount += iterations;

    /// <summary>Counts an instruction the hypervisor completed after it faulted (rule 4 above).</summary>
    public void RetireEmulated(EmulatedInstruction kind)
    {
        if (kind == EmulatedInstruction.PagetableWrite) _icount++;
    }

    /// <summary>Runs until Icount == stopAt, or the host requests a stop, or an unsupported instruction.</summary>
    public StopReason Run(ulong stopAt)
    {
        _stopAt = stopAt;
        _stopRequested = false;
        StopMessage = null;
        NoteCodeSegment();
        Block? prev = null; // the block that just ran, when its successor may be looked up in its links
        while (true)
        {
            if (_stopRequested) return StopReason.Stopped;
            if (_icount >= _stopAt) return StopReason.InstructionLimit; // the field: StopAtCurrentCount may lower it
            bool singleStep = (FlagsReg & Fl.TF) != 0;
            // Breakpoints.cs: one instruction per block while any breakpoint is enabled; instruction breakpoints checked first.
            bool breakpoints = (Dr[7] & 0xFF) != 0 && (DataBreakpointsArmed() | InstructionBreakpointsArmed);
            if (!breakpoints) _dataBreakpointsActive = false;
            if (breakpoints && InstructionBreakpoint())
            {
                DeliverFault();
                prev = null;
                continue;
            }
            _oneAtATime = singleStep || breakpoints;
            Block? b = prev?.Successor(Eip, ChainEpoch);
            if (b == null)
            {
                b = FetchBlock(_oneAtATime);
                if (b == null)
                {
                    DeliverFault();
                    prev = null;
                    continue;
                }
                if (prev != null && b.Cached && !_oneAtATime) prev.Link(b, ChainEpoch);
            }
            // Host (debugger) breakpoints, Breakpoints.cs: the block runs only up to the first one in it.
            int cap = _hostBreaks == null ? int.MaxValue : HostBreakCap(b);
            if (cap == 0) { prev = null; continue; }
            if (b.Compiled == null && Tier == CpuTier.Compiled && b.Cached)
            {
                int hits = b.Hits++;
                if (b.Code32 && (hits == CompileThreshold || hits == ReuseThreshold)) CompileOrReuse(b, hits);
            }
            // Compiled code runs whole blocks with no per-instruction checks: anything ExecBlock
            // checks between instructions (TF, armed instruction breakpoints: _oneAtATime) keeps it off.
            bool whole = cap >= b.Count;
            int r = b.Compiled != null && !_oneAtATime && whole && (ulong)b.Count <= _stopAt - _icount ? ExecCompiledChain(ref b) : ExecBlock(b, singleStep, cap);
            if (r < 0) return StopReason.Unsupported;
            if (breakpoints && r != 0) FlagsReg &= ~Fl.RF; // RF lasts one instruction
            prev = r != 0 && b.Chainable && !_oneAtATime && whole ? b : null;
        }
    }

    /// <summary>
    /// Ends the current <see cref="Run"/> at the current count once the instruction being completed
    /// (or the event being delivered) is done, as if that had been its stop count. Unlike
    /// <see cref="RequestStop"/> the run reports <see cref="StopReason.InstructionLimit"/>, so the
    /// machine can resume as if it had never stopped (a debugger stopping at an event).
    /// </summary>
    public void StopAtCurrentCount() => _stopAt = Math.Min(_stopAt, Icount);

    /// <summary>Lowers the current <see cref="Run"/>'s stop count to <paramref name="icount"/> if that is sooner (it reports <see cref="StopReason.InstructionLimit"/> there).</summary>
    public void StopNoLaterThan(ulong icount) => _stopAt = Math.Min(_stopAt, icount);

    /// <summary>Executes exactly one instruction (or one rep iteration); used by debuggers and tests.</summary>
    public StopReason Step() => Run(Icount + 1);

    /// <summary>
    /// Bumped whenever a TLB entry changes (fill, invalidation, flush, CPL change) or CS's base,
    /// limit or attributes change, so remembered block successors, which skip the code fetch's TLB
    /// lookup and CS limit check, are dropped.
    /// </summary>
    internal ulong ChainEpoch;

    // CS as the remembered successors were linked under (NoteCodeSegment).
    private uint _chainCsBase, _chainCsLimit;
    private ushort _chainCsAttr;

    /// <summary>
    /// Drops the remembered successors when CS is not the one they were linked under: a fetch
    /// through another base reads other code, and one past a new limit faults (FetchBlock). Called
    /// wherever CS may have changed: a run's start (anything may happen between runs), after the
    /// host took an event or a hlt (Xen's bounce frames and returns load CS), and at a far transfer.
    /// </summary>
    internal void NoteCodeSegment()
    {
        ref SegmentCache cs = ref Segs[Seg.CS];
        if (cs.Base == _chainCsBase && cs.Limit == _chainCsLimit && cs.Attr == _chainCsAttr) return;
        _chainCsBase = cs.Base;
        _chainCsLimit = cs.Limit;
        _chainCsAttr = cs.Attr;
        ChainEpoch++;
    }

    private void DeliverToHost(in CpuEvent e)
    {
        Host.Deliver(this, e);
        NoteCodeSegment();
    }

    /// <summary>
    /// Runs a block from instruction <paramref name="from"/> (0 but after a compiled region left at
    /// an access its inline path does not handle, ExecCompiledEnd): -1 unsupported instruction; 1
    /// the block ended normally or by a near branch; 0 otherwise (fault, event, stop).
    /// </summary>
    private int ExecBlock(Block b, bool singleStep, int cap = int.MaxValue, int from = 0)
    {
        var insns = b.Insns;
        int n = Math.Min(b.Count, cap);
        ulong budget = _stopAt - _icount;
        if ((ulong)(n - from) > budget) n = from + (int)budget;
        if (_oneAtATime) n = Math.Min(n, from + 1);
        _blocks.Current = b.Id;
        for (int i = from; i < n; i++)
        {
            ref DecodedInsn d = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(insns), i); // i < Count <= Length
            InsnEip = d.Eip;
            Eip = d.NextEip;
            unsafe { d.Exec(this, ref d); }
            if (Exit != 0)
            {
                _blocks.Current = 0;
                if (Exit == CpuExit.Branch)
                {
                    Exit = 0;
                    _icount++;
                    if (DataBreakpointHits != 0) { DataBreakpointTrap(singleStep, d.Insn); return 0; }
                    if (singleStep) { SingleStepTrap(d.Insn); return 0; }
                    return 1;
                }
                return HandleExit(singleStep, d.Insn) ? 0 : -1;
            }
            _icount++;
        }
        _blocks.Current = 0;
        if (DataBreakpointHits != 0 && n > from) { DataBreakpointTrap(singleStep, insns[n - 1].Insn); return 0; }
        if (singleStep && n > from) { SingleStepTrap(insns[n - 1].Insn); return 0; }
        return 1;
    }

    /// <summary>
    /// Runs a compiled region (which may run several of its blocks, docs/compiled-tier.md), then,
    /// while each run ends normally, the region headed by the remembered successor of the block it
    /// ended in, when that is compiled too and nothing <see cref="Run"/> checks between blocks
    /// applies (a stop request, TF, an enabled breakpoint, a block that does not fit the budget):
    /// the blocks of a hot loop follow each other without the run loop's per-block bookkeeping.
    /// <paramref name="b"/> ends as the last block run; the result is as <see cref="ExecBlock"/>'s.
    /// </summary>
    private int ExecCompiledChain(ref Block b)
    {
        while (true)
        {
            // While a region runs, a store into any of its blocks ends it (BlockCache.Invalidate).
            _blocks.Current = b.Id;
            var region = b.Compiled!;
            // Branches inside the region skip the same checks as the chaining below: allowed only when none applies.
            ulong epoch = _hostBreaks == null && (Dr[7] & 0xFF) == 0 && (FlagsReg & Fl.TF) == 0 ? ChainEpoch : ulong.MaxValue;
            int r = region.Code(region.Members, epoch, region.Entry);
            if (r < 0)
            {
                _blocks.Current = 0;
                return ExecBlock(b, false);
            }
            b = region.Members[r >> 16];
            int i = r & 0xFFFF;
            if (i != b.Count) return ExecCompiledEnd(b, i);
            // Any enabled breakpoint (instruction or data, DR7 L0-G3) sends blocks back to Run's one-at-a-time path.
            // Host (debugger) breakpoints too: Run checks each block for them (HostBreakCap).
            if (_stopRequested || !b.Chainable || (FlagsReg & Fl.TF) != 0 || (Dr[7] & 0xFF) != 0 || _hostBreaks != null) break;
            Block? next = b.Successor(Eip, ChainEpoch);
            if (next?.Compiled == null || (ulong)next.Count > _stopAt - _icount) break;
            b = next;
        }
        _blocks.Current = 0;
        return 1;
    }

    /// <summary>
    /// The end of a compiled block (run only when its whole length fits the budget and TF is clear,
    /// so a stop count is met exactly at a block boundary) that returned <paramref name="i"/>: the
    /// result is as <see cref="ExecBlock"/>'s.
    /// </summary>
    private int ExecCompiledEnd(Block b, int i)
    {
        _blocks.Current = 0;
        // No exit flag: instruction i made an access the inline path does not handle (TLB miss, A/D
        // update, page crossing, store to code...); nothing of it ran, and the block cache runs the
        // block from it, as it would have run the whole block (docs/compiled-tier.md, "Inline TLB hit").
        if (Exit == 0) return ExecBlock(b, false, int.MaxValue, i);
        // Instruction i set an exit flag; instructions before it are counted.
        if (Exit == CpuExit.Branch)
        {
            Exit = 0;
            _icount++;
            return 1;
        }
        return HandleExit(false, b.Insns[i].Insn) ? 0 : -1;
    }

    private void CompileOrReuse(Block b, int hits)
    {
        int entered = Compiled.BlockCompiler.Enter(b);
        if (entered != 0)
        {
            CompiledCodeEntered += entered;
            return;
        }
        if (hits < CompileThreshold)
        {
            CompiledCodeReused += Compiled.BlockCompiler.Reuse(b, _blocks, Memory, this);
            return;
        }
        var (il, blocks) = Compiled.BlockCompiler.Compile(b, _blocks, Memory, this);
        if (il == 0) { CompiledCodeReused += blocks; return; }
        CompiledIlBytes += il;
        BlocksCompiled += blocks;
    }

    /// <summary>Run one instruction per block: TF or an enabled instruction breakpoint (set by <see cref="Run"/>).</summary>
    private bool _oneAtATime;

    private bool HandleExit(bool singleStep, in Instruction insn)
    {
        CpuExit ex = Exit;
        Exit = 0;
        if ((ex & CpuExit.Unsupported) != 0)
        {
            Eip = InsnEip;
            return false;
        }
        if ((ex & CpuExit.Fault) != 0)
        {
            DataBreakpointHits = 0; // the instruction did not complete: no data breakpoint trap
            DeliverToHost(_pending);
            ClearFault();
            return true;
        }
        _icount++;
        if ((ex & CpuExit.Event) != 0)
        {
            DataBreakpointHits = 0; // an instruction that enters Xen (int, hypercall): Xen's #DB handling is not modelled
            DeliverToHost(_pending);
            ClearFault();
        }
        else if (singleStep) SingleStepTrap(insn);
        return true;
    }

    /// <summary>#DB after an instruction executed with TF set (SDM vol. 3 §17.3.1.4): DR6.BS; held back after MOV/POP SS.</summary>
    private void SingleStepTrap(in Instruction insn)
    {
        if (ShadowsSingleStep(insn)) return;
        Dr[6] |= 0x4000;
        var e = new CpuEvent(Vectors.DB, EventKind.Trap, false, 0, InsnEip, 0);
        DeliverToHost(e);
        ClearFault();
    }

    private void DeliverFault()
    {
        Exit = 0;
        DeliverToHost(_pending);
        ClearFault();
    }

    /// <summary>Stops the machine at an instruction outside the implemented set, with its disassembly.</summary>
    public void StopUnsupported(ref DecodedInsn d)
    {
        var fmt = new IntelFormatter();
        var output = new StringOutput();
        fmt.Format(d.Insn, output);
        StopMessage = $"unsupported instruction {output.ToStringAndReset()} at {Segs[Seg.CS].Selector:x4}:{d.Eip:x8}";
        Exit |= CpuExit.Unsupported;
    }

    /// <summary>Finds or decodes the block at CS:EIP; null after raising a fetch fault.</summary>
    private Block? FetchBlock(bool singleStep)
    {
        ref SegmentCache cs = ref Segs[Seg.CS];
        uint eip = Eip;
        InsnEip = eip;
        Exit = 0;
        if (eip > cs.Limit) { RaiseGp(0); return null; }
        uint lin = cs.Base + eip;
        ulong e = _tlb[lin >> 12];
        ulong phys;
        if ((e & (GenMask | _tlbX)) == _tlbX) phys = (e & FrameMask) | (lin & 0xFFF);
        else if (!Translate(lin, Access.Execute, Cpl == 3, out phys)) return null;
        bool code32 = cs.Big;
        ulong toLimit = (ulong)cs.Limit - eip + 1;
        if (UseBlockCache && !singleStep)
        {
            Block? hit = _blocks.Lookup(eip, phys, code32);
            if (hit != null && (ulong)(hit.EndEip - eip) <= toLimit) return hit;
        }
        int toPage = 0x1000 - (int)(lin & 0xFFF);
        int max = (int)Math.Min((ulong)toPage, toLimit);
        bool cache = UseBlockCache && !singleStep && (ulong)toPage <= toLimit;
        Block b = _blocks.Build(eip, phys, code32, max, cache, UseBlockCache && !singleStep ? BlockCache.MaxBlockInsns : 1);
        if (b.Count > 0) return b;
        // The first instruction needs bytes past the page (or past the CS limit).
        int want = (int)Math.Min(15ul, toLimit);
        if (want <= toPage) { RaiseGp(0); return null; }
        if (!Translate(lin + (uint)toPage, Access.Execute, Cpl == 3, out ulong phys2)) return null;
        byte[] bytes = _blocks.CrossBytes;
        Memory.ReadBytes(phys, bytes.AsSpan(0, toPage));
        Memory.ReadBytes(phys2, bytes.AsSpan(toPage, want - toPage));
        Block one = _blocks.BuildFromBytes(eip, phys, code32, bytes, want);
        if (one.Insns[0].Insn.IsInvalid && want < 15) { RaiseGp(0); return null; }
        return one;
    }
}
