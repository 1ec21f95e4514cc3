namespace Replayvisor.Engine.Boot;

/// <summary>
/// Address-space constants of a 32-bit Xen 3.1 hypervisor, per paging mode (docs/xen-abi.md §3), plus
/// the reserved GDT entries and flat selectors every vcpu sees (§3.1).
/// </summary>
public sealed class XenLayout
{
    // §3.1 reserved GDT area.
    public const int FirstReservedGdtPage = 14;
    public const uint FirstReservedGdtByte = 0xE000;
    public const int FirstReservedGdtEntry = 7168; // 0x1C00
    public const int ReservedGdtEntries = 512;
    public const uint GdtLimit = 0xEFFF;

    // §3.1 selectors.
    public const ushort HypervisorCs = 0xE008;
    public const ushort HypervisorDs = 0xE010;
    public const ushort FlatRing1Cs = 0xE019;
    public const ushort FlatRing1Ds = 0xE021;
    public const ushort FlatRing3Cs = 0xE02B;
    public const ushort FlatRing3Ds = 0xE033;
    public const ushort FlatKernelCs = FlatRing1Cs;
    public const ushort FlatKernelDs = FlatRing1Ds;
    public const ushort FlatKernelSs = FlatRing1Ds;
    public const ushort FlatUserCs = FlatRing3Cs;
    public const ushort FlatUserDs = FlatRing3Ds;
    public const ushort FlatUserSs = FlatRing3Ds;

    public const uint PageSize = 4096;

    public static readonly XenLayout NonPae = new(
        XenGuestType.X86_32, "xen-3.0-x86_32", hypervisorVirtStart: 0xFC000000, m2pEnd: 0xFC400000,
        firstXenL2Slot: 1008, flatLimitLow: 0xC3FF);

    public static readonly XenLayout Pae = new(
        XenGuestType.X86_32Pae, "xen-3.0-x86_32p", hypervisorVirtStart: 0xF5800000, m2pEnd: 0xF6800000,
        firstXenL2Slot: 428, flatLimitLow: 0x67FF);

    private readonly ulong[] _reservedGdt;

    private XenLayout(XenGuestType type, string magic, uint hypervisorVirtStart, uint m2pEnd, int firstXenL2Slot, uint flatLimitLow)
    {
        GuestType = type;
        StartInfoMagic = magic;
        HypervisorVirtStart = hypervisorVirtStart;
        MachToPhysVirtStart = hypervisorVirtStart;
        MachToPhysVirtEnd = m2pEnd;
        FirstXenL2Slot = firstXenL2Slot;
        // §3.1 table, indices 0x1C00..0x1C07 (hi:lo). The flat guest segments are limited to M2P_END.
        _reservedGdt =
        [
            0,                                       // 0x1C00 Xen's double-fault TSS (not guest-visible here)
            0x00CF9A00_0000FFFFul,                   // 0x1C01 __HYPERVISOR_CS
            0x00CF9200_0000FFFFul,                   // 0x1C02 __HYPERVISOR_DS
            0x00CFBA00_00000000ul | flatLimitLow,    // 0x1C03 FLAT_RING1_CS
            0x00CFB200_00000000ul | flatLimitLow,    // 0x1C04 FLAT_RING1_DS
            0x00CFFA00_00000000ul | flatLimitLow,    // 0x1C05 FLAT_RING3_CS
            0x00CFF200_00000000ul | flatLimitLow,    // 0x1C06 FLAT_RING3_DS
            0,                                       // 0x1C07 unused
        ];
    }

    public static XenLayout For(XenGuestType type) => type == XenGuestType.X86_32Pae ? Pae : NonPae;

    public XenGuestType GuestType { get; }
    public bool IsPae => GuestType == XenGuestType.X86_32Pae;
    /// <summary>start_info.magic (§4.1).</summary>
    public string StartInfoMagic { get; }
    public uint HypervisorVirtStart { get; }
    /// <summary>Read-only M2P mapping, supervisor-only (§3).</summary>
    public uint MachToPhysVirtStart { get; }
    public uint MachToPhysVirtEnd { get; }
    /// <summary>Highest address a guest segment may reach (= M2P end, §3).</summary>
    public uint GuestSegmentMax => MachToPhysVirtEnd;
    /// <summary>Flat guest segment limit in pages: (M2P_END-1)&gt;&gt;12.</summary>
    public uint FlatSegmentLimitPages => (MachToPhysVirtEnd - 1) >> 12;
    /// <summary>First L2 slot owned by Xen: in the only L2 (non-PAE) or in the L2 under L3 slot 3 (PAE).</summary>
    public int FirstXenL2Slot { get; }
    public int PteSize => IsPae ? 8 : 4;
    public int EntriesPerTable => IsPae ? 512 : 1024;

    /// <summary>Descriptor of reserved GDT entry <paramref name="index"/> (0x1C00..0x1C07), as hi:lo.</summary>
    public ulong ReservedGdtDescriptor(int index)
    {
        int i = index - FirstReservedGdtEntry;
        return i >= 0 && i < _reservedGdt.Length ? _reservedGdt[i] : 0;
    }

    /// <summary>vcpu_guest_context.ctrlreg[3] packing: (mfn&lt;&lt;12)|(mfn&gt;&gt;20) (§4.6).</summary>
    public static uint PackCr3(uint mfn) => (mfn << 12) | (mfn >> 20);
}
