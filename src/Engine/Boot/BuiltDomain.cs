using Replayvisor.Engine.Memory;

namespace Replayvisor.Engine.Boot;

/// <summary>
/// A domain ready to run: machine memory written by <see cref="DomainBuilder"/>, and everything the
/// hypervisor model needs to take it over (frame ownership, page-table frames to type and pin,
/// event channels to create, vCPU0's registers).
/// </summary>
public sealed record BuiltDomain
{
    public required PhysicalMemory Memory { get; init; }
    public required XenGuestInfo Guest { get; init; }
    public XenLayout Layout => Guest.Layout;
    public bool IsPae => Guest.IsPae;
    public required bool InitialDomain { get; init; }

    // Machine frames.
    public required MachineFrameMap Frames { get; init; }
    public uint NrPages => Frames.NrPages;
    /// <summary>pfn → mfn (the same values as the guest's mfn_list).</summary>
    public required IReadOnlyList<uint> P2m { get; init; }
    public uint SharedInfoMfn => MachineFrameMap.SharedInfoMfn;
    public uint M2PFirstMfn => MachineFrameMap.M2PFirstMfn;
    public uint M2PFrameCount => Frames.M2PFrameCount;
    /// <summary>Entries in the M2P that exist (one per machine frame); reads past them should fault (§3).</summary>
    public uint M2PEntries => Frames.TotalFrames;
    public uint SpareFirstMfn => Frames.SpareFirstMfn;
    public uint SpareCount => Frames.SpareCount;
    public bool IsXenOwned(uint mfn) => Frames.IsXenOwned(mfn);

    // Guest-virtual layout (§7).
    public required DomainVirtualLayout Virtual { get; init; }
    public uint StartInfoVa => Virtual.StartInfo;
    public uint StartInfoMfn => P2m[(int)Virtual.Pfn(Virtual.StartInfo)];
    public uint StoreMfn => P2m[(int)Virtual.Pfn(Virtual.Xenstore)];
    public uint ConsoleMfn => P2m[(int)Virtual.Pfn(Virtual.Console)];
    public uint StartInfoFlags => InitialDomain ? StartInfo.SifPrivileged | StartInfo.SifInitDomain : 0;

    /// <summary>Ports the model creates as unbound/interdomain to dom0 (the xenstored and console backends).</summary>
    public const uint StoreEvtchn = 1;
    public const uint ConsoleEvtchn = 2;

    // Page tables: the model types them (L1/L2/L3) and pins the top one.
    public required IReadOnlyList<PageTableFrame> PageTables { get; init; }
    public PageTableFrame TopTable => PageTables[0];
    public uint TopTableMfn => TopTable.Mfn;
    /// <summary>PAE: the L2 under L3 slot 3, whose slots ≥ 428 Xen fills. Non-PAE: the only L2 (slots ≥ 1008).</summary>
    public required PageTableFrame XenSlotL2 { get; init; }

    public required InitialVcpuState Vcpu0 { get; init; }
}
