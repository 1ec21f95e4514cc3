using Replayvisor.Engine.State;

namespace Replayvisor.Engine.Xen.Mm;

/// <summary>
/// The memory manager's own state as plain data (deep copies): the frame table and the
/// bookkeeping that is not in RAM. Xen's mappings (per-domain L1, reserved GDT page, TSS, M2P)
/// are machine frames, so they are part of the RAM image; the hypervisor-area layout
/// (<see cref="HypervisorArea"/>) is fixed when the domain is built.
/// </summary>
public sealed record MemoryManagerSnapshot
{
    public required FrameInfo[] Frames { get; init; }
    public required uint NextSpare { get; init; }
    public required uint BaseMfn { get; init; }
    public required uint[] GdtFrames { get; init; }
    public required uint GdtEntries { get; init; }
    public required uint LdtBase { get; init; }
    public required uint LdtEntries { get; init; }
    public required int LdtMapped { get; init; }
    public required uint VmAssist { get; init; }
    public required ushort KernelSs { get; init; }
    public required uint KernelSp { get; init; }
}

public sealed partial class MemoryManager : IStateHashable
{
    public MemoryManagerSnapshot Snapshot() => new()
    {
        Frames = Frames.Snapshot(),
        NextSpare = _nextSpare,
        BaseMfn = _baseMfn,
        GdtFrames = (uint[])_gdtFrames.Clone(),
        GdtEntries = _gdtEntries,
        LdtBase = _ldtBase,
        LdtEntries = _ldtEntries,
        LdtMapped = _ldtMapped,
        VmAssist = VmAssist,
        KernelSs = KernelSs,
        KernelSp = KernelSp,
    };

    /// <summary>
    /// Restores the bookkeeping (RAM and CPU registers — CR3, LDTR, GDTR — are restored by the
    /// machine alongside). The snapshot's arrays are copied, never kept.
    /// </summary>
    public void Restore(MemoryManagerSnapshot s)
    {
        ArgumentNullException.ThrowIfNull(s);
        if (s.GdtFrames.Length != _gdtFrames.Length) throw new ArgumentException("GDT frame count differs", nameof(s));
        Frames.Restore(s.Frames);
        _nextSpare = s.NextSpare;
        _baseMfn = s.BaseMfn;
        s.GdtFrames.CopyTo(_gdtFrames, 0);
        _gdtEntries = s.GdtEntries;
        _ldtBase = s.LdtBase;
        _ldtEntries = s.LdtEntries;
        _ldtMapped = s.LdtMapped;
        VmAssist = s.VmAssist;
        KernelSs = s.KernelSs;
        KernelSp = s.KernelSp;
        _cpu.FlushTlb();
    }

    /// <summary>Canonical encoding: configuration, the frame table, then the bookkeeping fields in a fixed order.</summary>
    public void WriteState(CanonicalWriter w)
    {
        ArgumentNullException.ThrowIfNull(w);
        w.Tag("mm");
        w.Bool(Privileged);
        w.Bool(_fmt.Pae);
        Frames.WriteState(w);
        w.Tag("mm-fields");
        w.U32(_nextSpare);
        w.U32(_baseMfn);
        foreach (uint f in _gdtFrames) w.U32(f);
        w.U32(_gdtEntries);
        w.U32(_ldtBase);
        w.U32(_ldtEntries);
        w.I32(_ldtMapped);
        w.U32(VmAssist);
        w.U16(KernelSs);
        w.U32(KernelSp);
    }
}
