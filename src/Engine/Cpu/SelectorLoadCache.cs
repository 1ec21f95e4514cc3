namespace Replayvisor.Engine.Cpu;

/// <summary>
/// The results of earlier successful selector loads, so loads that repeat (the six of every return to
/// the guest on Xen's return path, Xen.CpuSegmentLoader; a guest's own mov/pop to DS, ES, FS, GS, SS,
/// X86Cpu.LoadSegment) do not repeat the descriptor checks while nothing they read has changed
/// (docs/xen-model.md "Selector loads on the return path"). One instance serves both: an entry is the
/// same load whoever makes it.
/// <para>
/// An entry is keyed by the rule set (data, stack, code), the selector and the privilege, and a hit is
/// checked against the machine as it is now, against everything the full load would read: the table
/// register (GDTR, or a usable LDTR with the same selector, base and limit), the TLB's translation of
/// the descriptor's address (the one the full load's read would use; a flush, a vCPU switch or a
/// restore empties it), and the descriptor's 8 bytes in RAM, with the accessed bit already set so
/// the full load would write nothing. Any change of a GDT or LDT entry (update_descriptor, a store,
/// a restored snapshot), set_gdt, an LDT change or a remapping therefore misses, and the load is
/// done in full. A hit returns what the full load returns and changes nothing, so the cache never
/// changes a result.
/// </para>
/// </summary>
internal sealed class SelectorLoadCache(X86Cpu cpu)
{
    private const int Size = 32;

    private struct Entry
    {
        public bool Valid;
        public byte Rules;
        public byte Cpl;
        public ushort Selector;
        /// <summary>The table the descriptor came from: GDTR (LdtSelector 0) or the LDTR's selector, base and limit.</summary>
        public ushort LdtSelector;
        public uint TableBase, TableLimit;
        public ulong Descriptor;
        public SegmentCache Result;
    }

    private readonly Entry[] _entries = new Entry[Size];

    /// <summary>The rule set of a load of <paramref name="seg"/> (ISegmentLoader.TryLoad).</summary>
    public static byte RulesOf(int seg) => seg == Seg.CS ? (byte)2 : seg == Seg.SS ? (byte)1 : (byte)0;

    private static int Slot(ushort sel, byte rules, int cpl) => ((sel >> 3) ^ (sel >> 8) ^ (rules << 3) ^ cpl) & (Size - 1);

    /// <summary>The full load's result when an entry for this load still holds; false when the load must be done in full.</summary>
    public bool TryGet(byte rules, ushort sel, int cpl, out SegmentCache result)
    {
        ref Entry e = ref _entries[Slot(sel, rules, cpl)];
        result = e.Result;
        bool hit = e.Valid && e.Selector == sel && e.Rules == rules && e.Cpl == cpl
            && TableUnchanged(in e) && ReadDescriptor(e.TableBase + (uint)(sel & 0xFFF8), out ulong desc) && desc == e.Descriptor;
        if (hit) Hits++;
        return hit;
    }

    /// <summary>Loads answered (for tests).</summary>
    internal long Hits { get; private set; }

    /// <summary>
    /// True when <see cref="TryGet"/> would answer this load with <paramref name="result"/> now; then
    /// also the descriptor's linear address and 8 bytes, which with the table register are all that answer depends on.
    /// </summary>
    public bool Answers(byte rules, ushort sel, int cpl, in SegmentCache result, out uint lin, out ulong desc)
    {
        ref Entry e = ref _entries[Slot(sel, rules, cpl)];
        lin = e.TableBase + (uint)(sel & 0xFFF8);
        desc = e.Descriptor;
        return TryGet(rules, sel, cpl, out SegmentCache answer) && Same(answer, result);
    }

    /// <summary>Field-by-field equality of two segment caches.</summary>
    public static bool Same(in SegmentCache a, in SegmentCache b) =>
        a.Selector == b.Selector && a.Base == b.Base && a.Limit == b.Limit && a.Attr == b.Attr && a.Usable == b.Usable
        && a.ReadEnd == b.ReadEnd && a.WriteEnd == b.WriteEnd;

    /// <summary>Remembers a successful full load of a non-null selector, when a later hit could be checked (see the class comment).</summary>
    public void Add(byte rules, ushort sel, int cpl, in SegmentCache result)
    {
        ref Entry e = ref _entries[Slot(sel, rules, cpl)];
        e.Valid = false;
        bool ldt = (sel & 4) != 0;
        uint tableBase = ldt ? cpu.Ldtr.Base : cpu.GdtrBase;
        if (!ReadDescriptor(tableBase + (uint)(sel & 0xFFF8), out ulong desc) || !Desc.IsSegment(desc) || !Desc.Accessed(desc)) return;
        e = new Entry
        {
            Valid = true, Rules = rules, Cpl = (byte)cpl, Selector = sel,
            LdtSelector = ldt ? cpu.Ldtr.Selector : (ushort)0,
            TableBase = tableBase,
            TableLimit = ldt ? cpu.Ldtr.Limit : cpu.GdtrLimit,
            Descriptor = desc,
            Result = result,
        };
    }

    /// <summary>The table register holds what it held when the entry was made (X86Cpu.FetchDescriptor reads these).</summary>
    private bool TableUnchanged(in Entry e)
    {
        if ((e.Selector & 4) == 0) return cpu.GdtrBase == e.TableBase && cpu.GdtrLimit == e.TableLimit;
        var ldtr = cpu.Ldtr;
        return ldtr.Usable && ldtr.Selector == e.LdtSelector && ldtr.Base == e.TableBase && ldtr.Limit == e.TableLimit;
    }

    /// <summary>The descriptor at <paramref name="lin"/> through a TLB hit, as the full load's supervisor read would get it (within one page).</summary>
    internal bool ReadDescriptor(uint lin, out ulong desc)
    {
        desc = 0;
        if ((lin & 0xFFF) > 0xFF8 || !cpu.TlbSupervisorRead(lin, out ulong pa)) return false;
        desc = cpu.Memory.Read64(pa);
        return true;
    }
}
