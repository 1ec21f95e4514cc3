using Replayvisor.Engine.State;

namespace Replayvisor.Engine.Cpu;

/// <summary>A copy of the CPU's architectural state (registers, segments, control, FPU), plain data.</summary>
public sealed record CpuSnapshot
{
    public required uint[] Gpr { get; init; }
    public required uint Eip { get; init; }
    public required uint Eflags { get; init; }
    public required SegmentCache[] Segs { get; init; }
    public required SegmentCache Ldtr { get; init; }
    public required SegmentCache Tr { get; init; }
    public required uint Cr0 { get; init; }
    public required uint Cr2 { get; init; }
    public required uint Cr3 { get; init; }
    public required uint Cr4 { get; init; }
    public required ulong Efer { get; init; }
    public required uint[] Dr { get; init; }
    public required uint GdtrBase { get; init; }
    public required uint GdtrLimit { get; init; }
    public required uint IdtrBase { get; init; }
    public required uint IdtrLimit { get; init; }
    public required int Cpl { get; init; }
    public required ulong Icount { get; init; }
    public required FpuState Fpu { get; init; }
    /// <summary>
    /// The live TLB entries as (page, entry) pairs with the generations they belong to. A guest
    /// can see a stale translation until it flushes, so a restored run must have the same TLB
    /// to continue identically.
    /// </summary>
    public required ulong[] Tlb { get; init; }
    public required ulong TlbGeneration { get; init; }
    public required ulong TlbGlobalGeneration { get; init; }
    /// <summary>Breakpoints.cs: the last instruction loaded SS (the shadow is on), and the data breakpoint hits held across it.</summary>
    public bool InInterruptShadow { get; init; }
    public uint DataBreakpointHits { get; init; }
    /// <summary>Whether data breakpoint pages were kept out of the TLB, and the DR0-3/DR7 they came from.</summary>
    public bool DataBreakpointsActive { get; init; }
    public uint[] DataBreakpointKey { get; init; } = new uint[5];
}

/// <summary>Snapshot, restore and canonical hashing of the CPU.</summary>
public sealed partial class X86Cpu : IStateHashable
{
    /// <summary>The registers (<see cref="SaveContext"/>) plus the count, the live TLB entries, the interrupt shadow and data-breakpoint state.</summary>
    public CpuSnapshot Snapshot() => SaveContext() with
    {
        Icount = Icount, Tlb = LiveTlbEntries(), TlbGeneration = _gen, TlbGlobalGeneration = _globalGen,
        InInterruptShadow = InInterruptShadow, DataBreakpointHits = DataBreakpointHits,
        DataBreakpointsActive = DataBreakpointState.Active, DataBreakpointKey = DataBreakpointState.Key,
    };

    /// <summary>Entries that can still hit: of the current generation, or global ones not yet flushed.</summary>
    private ulong[] LiveTlbEntries()
    {
        var live = new List<ulong>();
        for (int i = 0; i < _tlb.Length; i++)
        {
            ulong e = _tlb[i];
            if (e != 0 && (e & GenMask) >= _globalGen) { live.Add((ulong)i); live.Add(e); }
        }
        return live.ToArray();
    }

    /// <summary>Restores a snapshot, TLB included; decoded blocks are dropped (a pure cache).</summary>
    public void Restore(CpuSnapshot s)
    {
        s.Gpr.CopyTo(Gpr, 0);
        Eip = s.Eip;
        Eflags = s.Eflags;
        s.Segs.CopyTo(Segs, 0);
        Ldtr = s.Ldtr; Tr = s.Tr;
        Cr0 = s.Cr0; Cr2 = s.Cr2; Cr3 = s.Cr3; Cr4 = s.Cr4; Efer = s.Efer;
        s.Dr.CopyTo(Dr, 0);
        GdtrBase = s.GdtrBase; GdtrLimit = s.GdtrLimit; IdtrBase = s.IdtrBase; IdtrLimit = s.IdtrLimit;
        _icount = s.Icount;
        Fpu.CopyFrom(s.Fpu);
        Cpl = s.Cpl;
        Exit = 0;
        _stopRequested = false;
        Array.Clear(_tlb);
        for (int i = 0; i + 1 < s.Tlb.Length; i += 2) _tlb[s.Tlb[i]] = s.Tlb[i + 1];
        _gen = s.TlbGeneration;
        _globalGen = s.TlbGlobalGeneration;
        RefreshTlbKeys();
        _blocks.Clear();
        InterruptShadowAt = s.InInterruptShadow ? s.Icount : ulong.MaxValue;
        DataBreakpointHits = s.DataBreakpointHits;
        RestoreDataBreakpointState(s.DataBreakpointsActive, s.DataBreakpointKey);
    }

    public void WriteState(CanonicalWriter w)
    {
        w.Tag("cpu");
        foreach (uint r in Gpr) w.U32(r);
        w.U32(Eip);
        w.U32(Eflags);
        foreach (var s in Segs) WriteSeg(w, s);
        WriteSeg(w, Ldtr);
        WriteSeg(w, Tr);
        w.U32(Cr0); w.U32(Cr2); w.U32(Cr3); w.U32(Cr4); w.U64(Efer);
        foreach (uint d in Dr) w.U32(d);
        w.U32(GdtrBase); w.U32(GdtrLimit); w.U32(IdtrBase); w.U32(IdtrLimit);
        w.I32(Cpl);
        w.U64(Icount);
        w.U16(Fpu.Fcw); w.U16(Fpu.Fsw); w.U16(Fpu.Ftw); w.U16(Fpu.Fop);
        w.U32(Fpu.Fip); w.U32(Fpu.Fdp); w.U16(Fpu.Fcs); w.U16(Fpu.Fds); w.U32(Fpu.Mxcsr);
        w.Bytes(Fpu.St); w.Bytes(Fpu.Xmm);
        // Written only while they matter, so the hashes of every other state stay as they were.
        if (InInterruptShadow || DataBreakpointHits != 0) { w.Tag("ss-shadow"); w.Bool(InInterruptShadow); w.U32(DataBreakpointHits); }
    }

    private static void WriteSeg(CanonicalWriter w, in SegmentCache s)
    {
        w.U16(s.Selector); w.U32(s.Base); w.U32(s.Limit); w.U16(s.Attr); w.Bool(s.Usable);
    }
}
