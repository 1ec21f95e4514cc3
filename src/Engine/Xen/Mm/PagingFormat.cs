using System.Runtime.CompilerServices;
using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Memory;

namespace Replayvisor.Engine.Xen.Mm;

/// <summary>
/// Entry layout and the disallowed-flag masks of one paging mode (docs/xen-abi.md §10.2, Xen 3.1 release build):
/// L1/L2: PSE/PAT (bit 7) and GLOBAL (bit 8) rejected, PAE bits 44–62 rejected (NX allowed);
/// PAE L3: must-be-zero mask 0xFFFFF1E6 (Xen's flag word; its bits 12–31 are PTE bits 52–63);
/// a compat guest of 64-bit Xen: 0xFFFFF198 (l3_disallow_mask for is_pv_32bit_domain in
/// xen/arch/x86/mm.c: PWT, PCD, PSE and GLOBAL; RW, USER, ACCESSED and DIRTY are allowed).
/// </summary>
internal sealed class PagingFormat
{
    public PagingFormat(PhysicalMemory mem, XenLayout layout)
    {
        Mem = mem;
        Layout = layout;
        Pae = layout.IsPae;
        EntrySize = Pae ? 8 : 4;
        Entries = Pae ? 512 : 1024;
        AddrMask = Pae ? 0x000F_FFFF_FFFF_F000ul : 0xFFFF_F000ul;
        ulong high = Pae ? 0x7FFF_F000_0000_0000ul : 0;
        L1Disallow = Pte.PSE | Pte.G | high;
        L2Disallow = Pte.PSE | Pte.G | high;
        L3Disallow = L3DisallowFor(compatGuest: false);
    }

    public PhysicalMemory Mem { get; }
    public XenLayout Layout { get; }
    public bool Pae { get; }
    public int EntrySize { get; }
    public int Entries { get; }
    public ulong AddrMask { get; }
    public ulong L1Disallow { get; }
    public ulong L2Disallow { get; }
    public ulong L3Disallow { get; set; }

    public static ulong L3DisallowFor(bool compatGuest) => (compatGuest ? 0x198ul : 0x1E6ul) | 0xFFFF_F000_0000_0000ul;

    /// <summary>The root table level: L2 (non-PAE) or L3 (PAE).</summary>
    public PageType RootType => Pae ? PageType.L3 : PageType.L2;

    public static ulong Mfn(ulong entry, ulong addrMask) => (entry & addrMask) >> 12;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong Mfn(ulong entry) => (entry & AddrMask) >> 12;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong EntryAddress(uint tableMfn, int index) => ((ulong)tableMfn << 12) + (ulong)(index * EntrySize);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong Read(uint tableMfn, int index) =>
        Pae ? Mem.Read64(EntryAddress(tableMfn, index)) : Mem.Read32(EntryAddress(tableMfn, index));

    public void Write(uint tableMfn, int index, ulong value)
    {
        if (Pae) Mem.Write64(EntryAddress(tableMfn, index), value);
        else Mem.Write32(EntryAddress(tableMfn, index), (uint)value);
    }

    /// <summary>Index of a VA in its L2 (non-PAE: the only L2; PAE: the L2 under L3 slot va&gt;&gt;30).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int L2Index(uint va) => Pae ? (int)((va >> 21) & 511) : (int)(va >> 22);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int L1Index(uint va) => Pae ? (int)((va >> 12) & 511) : (int)((va >> 12) & 1023);

    /// <summary>l?e_has_changed: frame or the given flags differ.</summary>
    public bool Changed(ulong oldE, ulong newE, ulong flags) => ((oldE ^ newE) & (AddrMask | flags)) != 0;
}
