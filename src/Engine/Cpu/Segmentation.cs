namespace Replayvisor.Engine.Cpu;

/// <summary>Field accessors for a raw 8-byte segment or gate descriptor (SDM vol. 3 §3.4.5, §5.8.3, §6.11).</summary>
public static class Desc
{
    public static int Access(ulong d) => (int)(d >> 40) & 0xFF;
    /// <summary>Type field (4 bits).</summary>
    public static int Type(ulong d) => (int)(d >> 40) & 0xF;
    /// <summary>Type field with the S bit (bit 4): 0x00-0x0F system, 0x10-0x1F code/data.</summary>
    public static int TypeS(ulong d) => (int)(d >> 40) & 0x1F;
    public static bool IsSegment(ulong d) => (d & (1ul << 44)) != 0;
    public static bool IsCode(ulong d) => IsSegment(d) && (d & (1ul << 43)) != 0;
    public static bool IsData(ulong d) => IsSegment(d) && (d & (1ul << 43)) == 0;
    public static bool Conforming(ulong d) => IsCode(d) && (d & (1ul << 42)) != 0;
    /// <summary>Data segments are always readable; code segments when the R bit is set.</summary>
    public static bool Readable(ulong d) => IsData(d) || (IsCode(d) && (d & (1ul << 41)) != 0);
    public static bool Writable(ulong d) => IsData(d) && (d & (1ul << 41)) != 0;
    public static int Dpl(ulong d) => (int)(d >> 45) & 3;
    public static bool Present(ulong d) => (d & (1ul << 47)) != 0;
    public static bool Accessed(ulong d) => (d & (1ul << 40)) != 0;

    /// <summary>Call/interrupt/trap gate: target selector.</summary>
    public static ushort GateSelector(ulong d) => (ushort)(d >> 16);
    /// <summary>Gate target offset; 16-bit gates (type bit 3 clear) use the low word only.</summary>
    public static uint GateOffset(ulong d) =>
        (Type(d) & 8) != 0 ? (uint)(d & 0xFFFF) | ((uint)(d >> 32) & 0xFFFF0000u) : (uint)(d & 0xFFFF);
    public static int GateParamCount(ulong d) => (int)(d >> 32) & 0x1F;
    /// <summary>Operand size of a gate: 4 for 386 gates (type bit 3 set), 2 for 286 gates.</summary>
    public static int GateSize(ulong d) => (Type(d) & 8) != 0 ? 4 : 2;
}

/// <summary>System descriptor types (S=0), SDM vol. 3 table 3-2.</summary>
public static class SysType
{
    public const int Tss16Avail = 1, Ldt = 2, Tss16Busy = 3, CallGate16 = 4, TaskGate = 5, IntGate16 = 6, TrapGate16 = 7,
        Tss32Avail = 9, Tss32Busy = 0xB, CallGate32 = 0xC, IntGate32 = 0xE, TrapGate32 = 0xF;
}

/// <summary>
/// Descriptor-table access and the segment-register load checks (SDM vol. 3 ch. 3 and 5; vol. 2 MOV, POP,
/// LDS, JMP, CALL, RET, IRET). Every routine validates first and changes nothing on failure; it raises the
/// fault itself and returns false. Selector error codes carry the index and TI bit with the RPL bits
/// cleared (the error-code format of SDM vol. 3 §6.13), plus EXT when a delivery of an event caused them.
/// </summary>
public sealed partial class X86Cpu
{
    /// <summary>
    /// Reads the descriptor named by sel from the GDT (TI=0) or the LDT (TI=1). An index beyond the table
    /// limit, or TI=1 with no usable LDTR, raises vector(sel&amp;0xFFFC|ext). A #PF while reading is passed through.
    /// </summary>
    public bool FetchDescriptor(ushort sel, byte vector, uint ext, out ulong desc, out uint addr)
    {
        desc = 0;
        uint index = (uint)sel & 0xFFF8;
        uint tableBase, tableLimit;
        if ((sel & 4) != 0)
        {
            if (!Ldtr.Usable || (Ldtr.Selector & 0xFFFC) == 0) { addr = 0; RaiseFault(vector, (sel & 0xFFFCu) | ext); return false; }
            tableBase = Ldtr.Base; tableLimit = Ldtr.Limit;
        }
        else
        {
            tableBase = GdtrBase; tableLimit = GdtrLimit;
        }
        addr = tableBase + index;
        if ((ulong)index + 7 > tableLimit) { RaiseFault(vector, (sel & 0xFFFCu) | ext); return false; }
        desc = ReadSystem(addr, 8);
        return !Faulted;
    }

    /// <summary>Sets the accessed bit of a code/data descriptor in memory if it is clear (SDM vol. 3 §3.4.5.1).</summary>
    public bool MarkAccessed(uint addr, ulong desc)
    {
        if (!Desc.IsSegment(desc) || Desc.Accessed(desc)) return true;
        WriteSystem(addr + 5, 1, (ulong)(Desc.Access(desc) | 1));
        return !Faulted;
    }

    /// <summary>
    /// Checks a selector for DS/ES/FS/GS at the current CPL (SDM vol. 2 MOV "IF DS, ES, FS, or GS is loaded
    /// with non-NULL selector"). A null selector yields an unusable segment. Nothing is committed.
    /// </summary>
    public bool CheckDataSegment(ushort sel, out SegmentCache cache, out uint addr, out ulong desc)
    {
        cache = default; addr = 0; desc = 0;
        if ((sel & 0xFFFC) == 0) { cache = SegmentCache.Null(sel); return true; }
        if (!FetchDescriptor(sel, Vectors.GP, 0, out desc, out addr)) return false;
        uint err = sel & 0xFFFCu;
        if (!Desc.Readable(desc)) { RaiseGp(err); return false; }
        if (!Desc.Conforming(desc) && Math.Max(Cpl, sel & 3) > Desc.Dpl(desc)) { RaiseGp(err); return false; }
        if (!Desc.Present(desc)) { RaiseFault(Vectors.NP, err); return false; }
        cache = SegmentCache.FromDescriptor(sel, desc | (Desc.IsSegment(desc) ? 1ul << 40 : 0));
        return true;
    }

    /// <summary>
    /// Checks a selector for SS at privilege cpl. vector is #GP for mov/pop/lss/ret/iret and #TS for a TSS
    /// stack switch; a null selector raises vector(ext) (#GP(0) for mov ss), not-present raises #SS(sel).
    /// </summary>
    public bool CheckStackSegment(ushort sel, int cpl, byte vector, uint ext, out SegmentCache cache, out uint addr, out ulong desc)
    {
        cache = default; addr = 0; desc = 0;
        if ((sel & 0xFFFC) == 0) { RaiseFault(vector, ext); return false; }
        if (!FetchDescriptor(sel, vector, ext, out desc, out addr)) return false;
        uint err = (sel & 0xFFFCu) | ext;
        if ((sel & 3) != cpl || !Desc.Writable(desc) || Desc.Dpl(desc) != cpl) { RaiseFault(vector, err); return false; }
        if (!Desc.Present(desc)) { RaiseFault(Vectors.SS, err); return false; }
        cache = SegmentCache.FromDescriptor(sel, desc | (1ul << 40));
        return true;
    }

    /// <summary>Loads DS/ES/FS/GS (or SS when seg is SS) with all checks; false (state unchanged) on a fault.</summary>
    public bool LoadSegment(int seg, ushort sel)
    {
        // A load the cache can answer is answered with the full load's result (SelectorLoadCache); a
        // null data selector reads no table. A pending fault would make the full load fail: never then.
        byte rules = SelectorLoadCache.RulesOf(seg);
        var loads = SegmentLoads;
        if (loads != null && !Faulted && (sel & 0xFFFC) != 0 && loads.TryGet(rules, sel, Cpl, out SegmentCache known))
        {
            Segs[seg] = known;
            return true;
        }
        SegmentCache s; uint addr; ulong desc;
        bool ok = seg == Seg.SS
            ? CheckStackSegment(sel, Cpl, Vectors.GP, 0, out s, out addr, out desc)
            : CheckDataSegment(sel, out s, out addr, out desc);
        if (!ok) return false;
        if ((sel & 0xFFFC) != 0 && !MarkAccessed(addr, desc)) return false;
        Segs[seg] = s;
        if (loads != null && (sel & 0xFFFC) != 0) loads.Add(rules, sel, Cpl, s);
        return true;
    }

    /// <summary>Earlier segment loads that <see cref="LoadSegment"/> may answer from (null: every load in full); shared with Xen's return path.</summary>
    internal SelectorLoadCache? SegmentLoads { get; set; }

    /// <summary>
    /// After a return to an outer privilege level: DS, ES, FS and GS holding data or non-conforming code
    /// segments with DPL &lt; the new CPL become null (SDM vol. 2 RET/IRET "RETURN-TO-OUTER-PRIVILEGE-LEVEL").
    /// </summary>
    public void NullInaccessibleDataSegments()
    {
        NullIfInaccessible(Seg.ES);
        NullIfInaccessible(Seg.DS);
        NullIfInaccessible(Seg.FS);
        NullIfInaccessible(Seg.GS);
    }

    private void NullIfInaccessible(int seg)
    {
        ref SegmentCache s = ref Segs[seg];
        if (!s.Usable) return;
        bool dataOrNc = !s.IsSystem && (!s.IsCode || !s.Conforming);
        if (dataOrNc && s.Dpl < Cpl) s = SegmentCache.Null(0);
    }

    /// <summary>
    /// Reads SS:ESP for privilege level cpl from the current TSS (32-bit TSS: esp0 at +4, ss0 at +8, 8 bytes
    /// per level; 16-bit TSS: sp0 at +2, ss0 at +4, 4 bytes per level). Beyond the TSS limit: #TS(TR|ext).
    /// </summary>
    public bool ReadTssStack(int cpl, uint ext, out ushort ss, out uint esp)
    {
        ss = 0; esp = 0;
        bool tss32 = (Tr.Type & 8) != 0;
        uint off = tss32 ? 4u + 8u * (uint)cpl : 2u + 4u * (uint)cpl;
        uint last = off + (tss32 ? 5u : 3u);
        if (!Tr.Usable || last > Tr.Limit) { RaiseFault(Vectors.TS, (Tr.Selector & 0xFFFCu) | ext); return false; }
        if (tss32)
        {
            esp = (uint)ReadSystem(Tr.Base + off, 4);
            if (Faulted) return false;
            ss = (ushort)ReadSystem(Tr.Base + off + 4, 2);
        }
        else
        {
            esp = (uint)ReadSystem(Tr.Base + off, 2);
            if (Faulted) return false;
            ss = (ushort)ReadSystem(Tr.Base + off + 2, 2);
        }
        return !Faulted;
    }

    /// <summary>
    /// Pushes vals (in push order) as size-byte slots onto a stack described by ss starting at sp, with
    /// page accesses at the given privilege. Every slot is checked against the segment limit (#SS(err)) and
    /// translated for writing before any byte is written. On success sp is the new stack pointer.
    /// </summary>
    public bool PushOnStack(in SegmentCache ss, ref uint sp, int size, ReadOnlySpan<uint> vals, bool user, uint err)
    {
        uint mask = ss.Big ? 0xFFFFFFFFu : 0xFFFFu;
        uint p = sp;
        for (int i = 0; i < vals.Length; i++)
        {
            p = (p - (uint)size) & mask;
            if (!ss.InLimits(p, size)) { RaiseFault(Vectors.SS, err); return false; }
            uint lin = ss.Base + p;
            if (!Translate(lin, Access.Write, user, out _)) return false;
            uint lastLin = lin + (uint)size - 1;
            if ((lastLin >> 12) != (lin >> 12) && !Translate(lastLin, Access.Write, user, out _)) return false;
        }
        p = sp;
        for (int i = 0; i < vals.Length; i++)
        {
            p = (p - (uint)size) & mask;
            WriteLinear(ss.Base + p, size, vals[i], user);
            if (Faulted) return false;
        }
        sp = ss.Big ? p : (sp & 0xFFFF0000u) | p;
        return true;
    }

    /// <summary>Commits a code segment and the CPL together (CPL = the selector's RPL, set by the caller).</summary>
    public void CommitCs(in SegmentCache cs, int cpl)
    {
        Segs[Seg.CS] = cs;
        if (Cpl != cpl) Cpl = cpl;
        NoteCodeSegment();
    }
}
