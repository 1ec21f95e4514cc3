using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Memory;

namespace Replayvisor.Engine.Xen.Mm;

/// <summary>
/// Xen's own mappings in the hypervisor hole (docs/xen-abi.md §3): the read-only, supervisor-only M2P
/// at MACH2PHYS_VIRT_START (only as far as M2P frames exist), and the per-domain area right above
/// MACH2PHYS_VIRT_END, mapped through one Xen L1 shared by every top-level table:
/// <code>
///   +0x00000  GDT, 16 pages: guest frames from set_gdt (pages 0–13), Xen's reserved page (14)
///   +0x10000  LDT shadow, 16 pages, mapped lazily on #PF
///   +0x20000  TSS (32-bit, ss1/esp1 = the guest kernel stack)
/// </code>
/// All of it lies above every guest segment limit (descriptor truncation, §11). GDT pages the guest
/// did not supply map a zeroed read-only Xen frame, so a selector there reads a null descriptor and
/// the CPU raises #GP(selector) — what Xen's GDT-area fault handler delivers.
/// </summary>
internal sealed class HypervisorArea
{
    public const uint GdtOffset = 0, LdtOffset = 0x10000, TssOffset = 0x20000;
    public const int GdtPages = 16, LdtPages = 16;
    public const int TssIndex = 0x1C08, LdtDescIndex = 0x1C09;
    public const ushort TssSelector = TssIndex << 3, LdtSelector = LdtDescIndex << 3;
    public const uint TssLimit = 0x67;
    /// <summary>Xen's IOBMP_INVALID_OFFSET: beyond the TSS limit, so there is no I/O bitmap.</summary>
    public const ushort IoBitmapInvalidOffset = 0x8000;

    private const ulong XenTableEntry = Pte.P | Pte.RW | Pte.A | Pte.D; // __PAGE_HYPERVISOR: no U
    private const ulong M2PEntry = Pte.P | Pte.A;                       // read-only, supervisor-only

    private readonly PagingFormat _fmt;
    private readonly PhysicalMemory _mem;
    private readonly ulong[] _xenSlots;

    public HypervisorArea(PagingFormat fmt, BuiltDomain domain, Func<uint> allocSpare)
    {
        _fmt = fmt;
        _mem = fmt.Mem;
        var layout = fmt.Layout;
        Base = layout.MachToPhysVirtEnd;
        FirstXenSlot = layout.FirstXenL2Slot;
        _xenSlots = new ulong[fmt.Entries - FirstXenSlot];

        // M2P: one L1 per L2 slot, entries only for M2P frames that exist.
        int perL1 = fmt.Entries;
        int l1s = (int)((domain.M2PFrameCount + (uint)perL1 - 1) / (uint)perL1);
        int m2pSlot = fmt.L2Index(layout.MachToPhysVirtStart);
        M2PL1Mfns = new uint[l1s];
        for (int i = 0; i < l1s; i++)
        {
            uint l1 = Alloc(allocSpare);
            M2PL1Mfns[i] = l1;
            for (int k = 0; k < perL1; k++)
            {
                uint frame = (uint)(i * perL1 + k);
                if (frame < domain.M2PFrameCount)
                    fmt.Write(l1, k, ((ulong)(domain.M2PFirstMfn + frame) << 12) | M2PEntry);
            }
            _xenSlots[m2pSlot + i - FirstXenSlot] = ((ulong)l1 << 12) | XenTableEntry;
        }

        PerDomainL1Mfn = Alloc(allocSpare);
        ReservedGdtMfn = Alloc(allocSpare);
        TssMfn = Alloc(allocSpare);
        ZeroGdtMfn = Alloc(allocSpare);
        _xenSlots[fmt.L2Index(Base) - FirstXenSlot] = ((ulong)PerDomainL1Mfn << 12) | XenTableEntry;

        for (int i = 0; i < 8; i++)
            _mem.Write64(((ulong)ReservedGdtMfn << 12) + (ulong)i * 8, layout.ReservedGdtDescriptor(XenLayout.FirstReservedGdtEntry + i));
        WriteReservedDescriptor(TssIndex, SystemDescriptor(TssVa, TssLimit, 0x8B)); // busy 32-bit TSS, DPL 0
        _mem.Write32(((ulong)TssMfn << 12) + 0x08, XenLayout.HypervisorDs);           // ss0
        _mem.Write16(((ulong)TssMfn << 12) + 0x66, IoBitmapInvalidOffset);

        for (int i = 0; i < GdtPages - 2; i++) SetGdtPage(i, 0);
        SetPerDomain((int)(XenLayout.FirstReservedGdtByte >> 12), ((ulong)ReservedGdtMfn << 12) | XenTableEntry);
        SetPerDomain((int)(TssOffset >> 12), ((ulong)TssMfn << 12) | XenTableEntry);
    }

    public uint Base { get; }
    public uint GdtVa => Base + GdtOffset;
    public uint LdtVa => Base + LdtOffset;
    public uint TssVa => Base + TssOffset;
    public int FirstXenSlot { get; }
    public uint[] M2PL1Mfns { get; }
    public uint PerDomainL1Mfn { get; }
    public uint ReservedGdtMfn { get; }
    public uint TssMfn { get; }
    public uint ZeroGdtMfn { get; }

    private uint Alloc(Func<uint> allocSpare)
    {
        uint mfn = allocSpare();
        if (mfn == 0) throw new InvalidOperationException("no spare Xen frames left for the hypervisor mappings");
        _mem.ClearFrame(mfn);
        return mfn;
    }

    /// <summary>Writes Xen's entries into slots ≥ FirstXenL2Slot of an L2 (non-PAE: every L2; PAE: the slot-3 L2).</summary>
    public void FillXenSlots(uint l2Mfn)
    {
        for (int i = 0; i < _xenSlots.Length; i++) _fmt.Write(l2Mfn, FirstXenSlot + i, _xenSlots[i]);
    }

    private void SetPerDomain(int index, ulong entry) => _fmt.Write(PerDomainL1Mfn, index, entry);

    /// <summary>GDT page i: a guest frame (mapped RW for the CPU's accessed-bit writes), or 0 for the zeroed read-only filler.</summary>
    public void SetGdtPage(int i, uint mfn) =>
        SetPerDomain(i, mfn != 0 ? ((ulong)mfn << 12) | XenTableEntry : ((ulong)ZeroGdtMfn << 12) | Pte.P | Pte.A);

    public ulong LdtEntry(int page) => _fmt.Read(PerDomainL1Mfn, (int)(LdtOffset >> 12) + page);
    public void SetLdtEntry(int page, ulong entry) => SetPerDomain((int)(LdtOffset >> 12) + page, entry);

    public void WriteReservedDescriptor(int index, ulong desc) =>
        _mem.Write64(((ulong)ReservedGdtMfn << 12) + (ulong)(index - XenLayout.FirstReservedGdtEntry) * 8, desc);

    public void SetKernelStack(ushort ss, uint esp)
    {
        _mem.Write32(((ulong)TssMfn << 12) + 0x0C, esp);
        _mem.Write32(((ulong)TssMfn << 12) + 0x10, ss);
    }

    /// <summary>A byte-granular system descriptor (TSS/LDT), SDM vol. 3 §7.2.2, §3.5.</summary>
    public static ulong SystemDescriptor(uint @base, uint limit, byte access)
    {
        uint lo = (limit & 0xFFFF) | (@base << 16);
        uint hi = ((@base >> 16) & 0xFF) | ((uint)access << 8) | (limit & 0xF0000) | (@base & 0xFF000000);
        return lo | ((ulong)hi << 32);
    }
}
