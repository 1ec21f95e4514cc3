using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Xen.Mm;

namespace Replayvisor.Engine.Xen;

/// <summary>
/// Xen's return-path selector loads done by the CPU's own descriptor checks (SDM vol. 3 §5.5-5.8),
/// so a guest sees exactly the faults real hardware would give Xen. A #PF while reading an LDT
/// descriptor goes to the MemoryManager first (lazy LDT mapping, docs/xen-abi.md §11) and the load is
/// retried once it is mapped. Nothing is committed to the segment registers, and the CPU's EIP,
/// CPL and fault state are left as they were.
/// Successful loads are remembered (<see cref="SelectorLoadCache"/>): a load whose descriptor, table
/// and translation are unchanged returns the remembered result without the checks.
/// </summary>
public sealed class CpuSegmentLoader : ISegmentLoader
{
    private readonly SelectorLoadCache _cache;
    private readonly ReturnLoadMemo _return;

    private readonly X86Cpu _cpu;
    private readonly MemoryManager _mm;

    public CpuSegmentLoader(X86Cpu cpu, MemoryManager mm)
    {
        _cpu = cpu;
        _mm = mm;
        _cache = new SelectorLoadCache(cpu);
        _return = new ReturnLoadMemo(cpu, _cache);
        cpu.SegmentLoads = _cache;
    }

    /// <summary>
    /// Use the cache of earlier loads, here and in the CPU's own segment loads (on by default; it never
    /// changes a result, only the time a load takes).
    /// </summary>
    public bool Caching
    {
        get => _cpu.SegmentLoads != null;
        set => _cpu.SegmentLoads = value ? _cache : null;
    }

    /// <summary>Loads answered by the cache (for tests).</summary>
    internal long Hits { get; private set; }

    /// <summary>Returns whose six loads were answered at once by <see cref="ReturnLoadMemo"/> (for tests).</summary>
    internal long ReturnHits { get; private set; }

    /// <summary>
    /// A return with the selectors of the last one, nothing they read changed and no fault pending is
    /// answered by <see cref="ReturnLoadMemo"/>; otherwise the six loads run one by one (each through the
    /// cache) and a return whose loads all succeeded is remembered.
    /// </summary>
    public int TryLoadReturn(ReadOnlySpan<ushort> selectors, Span<SegmentCache> scratch, out ReadOnlySpan<SegmentCache> loaded, out CpuEvent fault)
    {
        fault = default;
        if (Caching && !_cpu.Faulted && _return.TryGet(selectors, out loaded)) { ReturnHits++; return -1; }
        loaded = scratch;
        int failed = ISegmentLoader.LoadReturnInOrder(this, selectors, scratch, out fault);
        if (failed < 0 && Caching && !_cpu.Faulted) _return.Remember(selectors, scratch);
        return failed;
    }

    public bool TryLoad(int seg, ushort selector, int cpl, out SegmentCache cache, out CpuEvent fault)
    {
        fault = default;
        byte rules = SelectorLoadCache.RulesOf(seg);
        // A fault left pending would make the full load fail (X86Cpu.FetchDescriptor): only the full load gives that result.
        if (Caching && !_cpu.Faulted)
        {
            // A null data selector loads as an unusable segment without reading any table (X86Cpu.CheckDataSegment).
            if (rules == 0 && (selector & 0xFFFC) == 0) { cache = SegmentCache.Null(selector); return true; }
            if (_cache.TryGet(rules, selector, cpl, out cache)) { Hits++; return true; }
        }
        for (int attempt = 0; ; attempt++)
        {
            if (TryOnce(seg, selector, cpl, out cache, out fault))
            {
                if (Caching) _cache.Add(rules, selector, cpl, cache);
                return true;
            }
            if (fault.Vector != Vectors.PF || attempt > 0) return false;
            if (!_mm.HandlePageFault(fault.Cr2, fault.ErrorCode, cpl).Handled) return false;
        }
    }

    private bool TryOnce(int seg, ushort sel, int cpl, out SegmentCache cache, out CpuEvent fault)
    {
        fault = default;
        uint eip = _cpu.Eip, insnEip = _cpu.InsnEip;
        int savedCpl = _cpu.Cpl;
        _cpu.Cpl = cpl;
        bool ok;
        uint addr = 0;
        ulong desc = 0;
        try
        {
            if (seg == Seg.CS) ok = CheckCode(sel, cpl, out cache, out addr, out desc);
            else if (seg == Seg.SS) ok = _cpu.CheckStackSegment(sel, cpl, Vectors.GP, 0, out cache, out addr, out desc);
            else ok = _cpu.CheckDataSegment(sel, out cache, out addr, out desc);
            if (ok && (sel & 0xFFFC) != 0) ok = _cpu.MarkAccessed(addr, desc);
            if (!ok)
            {
                fault = _cpu.PendingEvent;
                _cpu.ClearFault();
            }
        }
        finally
        {
            _cpu.Cpl = savedCpl;
            _cpu.Eip = eip;
            _cpu.InsnEip = insnEip;
        }
        return ok;
    }

    /// <summary>The CS checks of a protected-mode iret/far return at privilege cpl (SDM vol. 2 IRET).</summary>
    private bool CheckCode(ushort sel, int cpl, out SegmentCache cache, out uint addr, out ulong desc)
    {
        cache = default;
        addr = 0;
        desc = 0;
        uint err = sel & 0xFFFCu;
        if (err == 0) { _cpu.RaiseGp(0); return false; }
        if (!_cpu.FetchDescriptor(sel, Vectors.GP, 0, out desc, out addr)) return false;
        int rpl = sel & 3;
        if (!Desc.IsCode(desc) || rpl < cpl) { _cpu.RaiseGp(err); return false; }
        if (Desc.Conforming(desc) ? Desc.Dpl(desc) > rpl : Desc.Dpl(desc) != rpl) { _cpu.RaiseGp(err); return false; }
        if (!Desc.Present(desc)) { _cpu.RaiseFault(Vectors.NP, err); return false; }
        cache = SegmentCache.FromDescriptor(sel, desc | (1ul << 40));
        return true;
    }
}
