using System.Buffers.Binary;

namespace Replayvisor.Engine.Xen.Mm;

public sealed partial class MemoryManager
{
    /// <summary>
    /// Reads guest virtual memory through the current page tables without any side effect: no
    /// accessed/dirty bits, no TLB fill, no fault (GuestPageWalk). For bookkeeping that must not
    /// change the run it watches (the recorder's hypercall output buffers, debuggers).
    /// </summary>
    public bool PeekGuest(uint va, Span<byte> into)
    {
        if ((ulong)va + (ulong)into.Length > _layout.HypervisorVirtStart) return false;
        for (int i = 0; i < into.Length;)
        {
            uint a = va + (uint)i;
            if (!GuestPageWalk.TranslateRead(_fmt, _baseMfn, a, out ulong pa)) return false;
            int n = Math.Min(into.Length - i, 0x1000 - (int)(a & 0xFFF));
            _domain.Memory.ReadBytes(pa, into.Slice(i, n));
            i += n;
        }
        return true;
    }

    /// <summary>The page the last <see cref="PeekGuest32"/> walked, validated by its entries (never stale: <see cref="WalkMemo"/>).</summary>
    private WalkMemo _peekMemo;

    // What PeekGuest32 reads at every call, each one load from this object instead of a chain of
    // dependent ones (_fmt.Mem.Ram, _fmt.Pae, _layout.HypervisorVirtStart): all three are fixed for
    // the machine's life (readonly RAM array, paging format and layout chosen at boot).
    private readonly byte[] _peekRam;
    private readonly bool _peekPae;
    private readonly ulong _peekLimit;

    /// <summary>
    /// A little-endian u32 read by <see cref="PeekGuest"/>; null when not mapped. Within one page
    /// (the recorder's call-site reads, at every hypercall and upcall) one walk and one read; a
    /// second read of the page the last one walked re-reads that walk's entries instead of walking
    /// (<see cref="WalkMemo"/>: the same answer as the walk, by construction).
    /// </summary>
    // Optimised at once: a recording reads here at every hypercall and upcall, and a plain run never does (tiered JIT would get to it late).
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public uint? PeekGuest32(uint va)
    {
        if ((va & 0xFFF) <= 0xFFC && (ulong)va + 4 <= _peekLimit)
        {
            // The frame is one a walk found in RAM (below FrameCount): read it as PhysicalMemory.Read32 reads RAM, without the call.
            if (_peekMemo.Holds(_peekRam, _peekPae, _baseMfn, va))
                return BinaryPrimitives.ReadUInt32LittleEndian(_peekRam.AsSpan((int)(_peekMemo.FrameBase | (va & 0xFFF)), 4));
            return _peekMemo.Walk(_fmt, _baseMfn, va, out ulong pa) ? _domain.Memory.Read32(pa) : null;
        }
        return PeekAcrossPages(va);
    }

    /// <summary>A u32 that may straddle two pages (kept out of <see cref="PeekGuest32"/>, whose other paths need no stack buffer).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private uint? PeekAcrossPages(uint va)
    {
        Span<byte> b = stackalloc byte[4];
        return PeekGuest(va, b) ? BitConverter.ToUInt32(b) : null;
    }
}
