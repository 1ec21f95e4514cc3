using System.Runtime.CompilerServices;

namespace Replayvisor.Engine.Xen.Mm;

/// <summary>Where the L1 entry mapping a VA lives under the current page tables.</summary>
internal readonly record struct L1Slot(uint L1Mfn, int Index, ulong Entry);

/// <summary>
/// Software walk of the guest's current tables (Xen's guest_map_l1e / guest_get_eff_l1e): reads
/// only, never sets A/D bits and never touches the CPU's TLB or CR2.
/// </summary>
internal static class GuestPageWalk
{
    /// <summary>Finds the L1 entry for va; false if an upper level is not present or is a superpage.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool FindL1(PagingFormat fmt, uint rootMfn, uint va, out L1Slot slot)
    {
        slot = default;
        uint l2;
        if (fmt.Pae)
        {
            ulong l3e = fmt.Read(rootMfn, (int)(va >> 30));
            if ((l3e & Pte.P) == 0) return false;
            ulong m = fmt.Mfn(l3e);
            if (m >= fmt.Mem.FrameCount) return false;
            l2 = (uint)m;
        }
        else l2 = rootMfn;
        ulong l2e = fmt.Read(l2, fmt.L2Index(va));
        if ((l2e & (Pte.P | Pte.PSE)) != Pte.P) return false;
        ulong l1 = fmt.Mfn(l2e);
        if (l1 >= fmt.Mem.FrameCount) return false;
        int index = fmt.L1Index(va);
        slot = new L1Slot((uint)l1, index, fmt.Read((uint)l1, index));
        return true;
    }

    /// <summary>Supervisor read translation (presence only), for fetching the faulting instruction.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool TranslateRead(PagingFormat fmt, uint rootMfn, uint va, out ulong pa)
    {
        pa = 0;
        if (!FindL1(fmt, rootMfn, va, out var s) || (s.Entry & Pte.P) == 0) return false;
        ulong m = fmt.Mfn(s.Entry);
        if (m >= fmt.Mem.FrameCount) return false;
        pa = (m << 12) | (va & 0xFFFu);
        return true;
    }
}

/// <summary>
/// The last successful <see cref="GuestPageWalk.TranslateRead"/> of one page, with the page-table
/// entries the walk read and where it read them (MemoryManager.PeekGuest32: the recorder reads the
/// same kernel-stack page at nearly every hypercall and upcall). The walk reads nothing but those
/// entries: under the same root table, for the same page, if each entry still holds the value it
/// held, the walk would read the same addresses in the same order and give the same frame. So
/// <see cref="Holds"/> re-reads the entries (independent loads, not the walk's dependent chain)
/// and the frame it answers is exactly the walk's. Unlike the CPU's TLB, which is not kept coherent
/// with page-table writes (as on real hardware, docs/xen-model.md), it can never be stale.
/// </summary>
internal struct WalkMemo
{
    private ulong _l3At, _l3e, _l2At, _l2e, _l1At, _l1e;
    private uint _root, _page;
    private bool _valid;

    /// <summary>The frame's physical address, valid when <see cref="Holds"/> said so.</summary>
    public ulong FrameBase { get; private set; }

    /// <summary>
    /// True when a walk of <paramref name="va"/> under <paramref name="rootMfn"/> would give <see cref="FrameBase"/> now;
    /// <paramref name="ram"/> and <paramref name="pae"/> are the walks' format's (<see cref="PagingFormat.Mem"/>'s RAM, <see cref="PagingFormat.Pae"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly bool Holds(byte[] ram, bool pae, uint rootMfn, uint va)
    {
        if (!_valid || rootMfn != _root || va >> 12 != _page) return false;
        // The entries' addresses are those of a walk that read them, so they lie in RAM: read it directly.
        if (!pae) return Entry32(ram, _l2At) == _l2e && Entry32(ram, _l1At) == _l1e;
        return Entry64(ram, _l3At) == _l3e && Entry64(ram, _l2At) == _l2e && Entry64(ram, _l1At) == _l1e;
    }

    // Inlined: Holds is inlined into large callers (Hypervisor.Hypercall via PeekGuest32), where the JIT's budget left the third read a call.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Entry64(byte[] ram, ulong at) => System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(ram.AsSpan((int)at, 8));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Entry32(byte[] ram, ulong at) => System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(ram.AsSpan((int)at, 4));

    /// <summary>
    /// <see cref="GuestPageWalk.TranslateRead"/> (the same reads and checks, in the same order),
    /// remembering the entries it read when it succeeds; forgets the last walk when it fails.
    /// </summary>
    public bool Walk(PagingFormat fmt, uint rootMfn, uint va, out ulong pa)
    {
        _valid = false;
        pa = 0;
        uint l2;
        if (fmt.Pae)
        {
            _l3At = fmt.EntryAddress(rootMfn, (int)(va >> 30));
            _l3e = fmt.Mem.Read64(_l3At);
            if ((_l3e & Pte.P) == 0) return false;
            ulong m = fmt.Mfn(_l3e);
            if (m >= fmt.Mem.FrameCount) return false;
            l2 = (uint)m;
        }
        else l2 = rootMfn;
        _l2At = fmt.EntryAddress(l2, fmt.L2Index(va));
        _l2e = fmt.Read(l2, fmt.L2Index(va));
        if ((_l2e & (Pte.P | Pte.PSE)) != Pte.P) return false;
        ulong l1 = fmt.Mfn(_l2e);
        if (l1 >= fmt.Mem.FrameCount) return false;
        _l1At = fmt.EntryAddress((uint)l1, fmt.L1Index(va));
        _l1e = fmt.Read((uint)l1, fmt.L1Index(va));
        if ((_l1e & Pte.P) == 0) return false;
        ulong frame = fmt.Mfn(_l1e);
        if (frame >= fmt.Mem.FrameCount) return false;
        FrameBase = frame << 12;
        pa = FrameBase | (va & 0xFFFu);
        _root = rootMfn;
        _page = va >> 12;
        _valid = true;
        return true;
    }
}
