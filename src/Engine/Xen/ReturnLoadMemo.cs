using Replayvisor.Engine.Cpu;

namespace Replayvisor.Engine.Xen;

/// <summary>
/// The last return to the guest's six selector loads taken as one (restore_all_guest's DS, ES, FS, GS
/// reloads, then its iret's CS and SS; xen/arch/x86/x86_32/entry.S), so that a return with the same
/// six selectors as the last one checks each descriptor the loads read once instead of going through
/// <see cref="SelectorLoadCache"/> six times (docs/xen-model.md "Selector loads on the return path").
/// <para>
/// It is made only when each of the six loads, asked again right after they ran, would be answered by
/// the cache with the very result it gave. A later return with the same selectors is answered from
/// it only while every condition of those six cache answers still holds: the table registers they
/// read (GDTR, or the LDTR's selector, base and limit) and, for each distinct descriptor address, the
/// TLB's translation and the descriptor's 8 bytes. Those are exactly what the cache checks, so an
/// answer here is the cache's answer, which is the full load's.
/// </para>
/// </summary>
internal sealed class ReturnLoadMemo(X86Cpu cpu, SelectorLoadCache cache)
{
    /// <summary>Loads per return, in the order they run and are passed: DS, ES, FS, GS, CS, SS.</summary>
    public const int Loads = 6;

    private bool _valid;
    /// <summary>The six selectors, packed (<see cref="Pack"/>).</summary>
    private ulong _dataSelectors;
    private uint _codeSelectors;
    private readonly SegmentCache[] _results = new SegmentCache[Loads];
    private bool _usesGdt, _usesLdt;
    private uint _gdtBase, _gdtLimit, _ldtBase, _ldtLimit;
    private ushort _ldtSelector;
    /// <summary>The distinct descriptor addresses the loads read, and the 8 bytes each held.</summary>
    private readonly uint[] _lin = new uint[Loads];
    private readonly ulong[] _desc = new ulong[Loads];
    private int _descriptors;

    /// <summary>The rule set (SelectorLoadCache.RulesOf) and privilege of load <paramref name="i"/> of a return to ring <paramref name="rpl"/>.</summary>
    public static (byte Rules, int Cpl) LoadOf(int i, int rpl) => i switch
    {
        4 => (SelectorLoadCache.RulesOf(Seg.CS), 0),
        5 => (SelectorLoadCache.RulesOf(Seg.SS), rpl),
        _ => (SelectorLoadCache.RulesOf(Seg.DS), 0),
    };

    /// <summary>The six results of the last return when <paramref name="selectors"/> are its selectors and nothing the loads read has changed.</summary>
    public bool TryGet(ReadOnlySpan<ushort> selectors, out ReadOnlySpan<SegmentCache> loaded)
    {
        loaded = default;
        // Compared as two packed words built from single loads: a wide load over the caller's six
        // fresh 2-byte stores would wait for them to reach the cache (no store forwarding).
        var (data, code) = Pack(selectors);
        if (!_valid || data != _dataSelectors || code != _codeSelectors) return false;
        if (_usesGdt && (cpu.GdtrBase != _gdtBase || cpu.GdtrLimit != _gdtLimit)) return false;
        if (_usesLdt)
        {
            var ldtr = cpu.Ldtr;
            if (!ldtr.Usable || ldtr.Selector != _ldtSelector || ldtr.Base != _ldtBase || ldtr.Limit != _ldtLimit) return false;
        }
        for (int i = 0; i < _descriptors; i++)
            if (!cache.ReadDescriptor(_lin[i], out ulong desc) || desc != _desc[i]) return false;
        loaded = _results;
        return true;
    }

    private static (ulong Data, uint Code) Pack(ReadOnlySpan<ushort> s) =>
        (s[0] | (ulong)s[1] << 16 | (ulong)s[2] << 32 | (ulong)s[3] << 48, s[4] | (uint)s[5] << 16);

    /// <summary>Remembers a return whose six loads just succeeded with <paramref name="loaded"/>, if the cache answers each of them with that result now.</summary>
    public void Remember(ReadOnlySpan<ushort> selectors, ReadOnlySpan<SegmentCache> loaded)
    {
        _valid = false;
        _usesGdt = _usesLdt = false;
        _descriptors = 0;
        int rpl = selectors[4] & 3;
        for (int i = 0; i < Loads; i++)
        {
            var (rules, cpl) = LoadOf(i, rpl);
            ushort sel = selectors[i];
            // A null data selector reads no table (CpuSegmentLoader.TryLoad): it depends on nothing else.
            if (rules == 0 && (sel & 0xFFFC) == 0)
            {
                if (!SelectorLoadCache.Same(loaded[i], SegmentCache.Null(sel))) return;
                continue;
            }
            if (!cache.Answers(rules, sel, cpl, loaded[i], out uint lin, out ulong desc)) return;
            if ((sel & 4) != 0) _usesLdt = true; else _usesGdt = true;
            if (_lin.AsSpan(0, _descriptors).IndexOf(lin) < 0)
            {
                _lin[_descriptors] = lin;
                _desc[_descriptors++] = desc;
            }
        }
        _gdtBase = cpu.GdtrBase;
        _gdtLimit = cpu.GdtrLimit;
        _ldtSelector = cpu.Ldtr.Selector;
        _ldtBase = cpu.Ldtr.Base;
        _ldtLimit = cpu.Ldtr.Limit;
        (_dataSelectors, _codeSelectors) = Pack(selectors);
        loaded.CopyTo(_results);
        _valid = true;
    }
}
