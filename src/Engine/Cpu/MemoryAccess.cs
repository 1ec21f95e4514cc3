using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Replayvisor.Engine.Memory;

namespace Replayvisor.Engine.Cpu;

/// <summary>
/// Segmented and linear memory access. The fast path (expand-up segment within limits, TLB hit,
/// no page crossing, no decoded code on the written 64-byte lines) is a handful of compares; anything else
/// takes the checked path, which raises #GP/#SS/#PF with the SDM's error codes.
/// Every method returns normally on a fault with <see cref="Faulted"/> set; callers check it
/// before changing any state.
/// </summary>
public sealed partial class X86Cpu
{
    private readonly byte[] _ram;
    // PhysicalMemory's marks (PhysicalMemory.Marks.cs), read and written directly by the fast paths.
    private readonly byte[] _dirty;
    private readonly ulong[] _codeLines;
    private const int CodeLineShift = PhysicalMemory.CodeLineShift;

    /// <summary>Segs[seg] without a bounds check (seg is a decoded segment index, 0-5).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref SegmentCache SegAt(int seg) => ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(Segs), (nint)(uint)seg);

    /// <summary>The TLB entry of a linear address (the TLB has an entry for every 4 KiB page, so no bounds check).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ulong TlbAt(uint lin) => Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_tlb), (nint)(lin >> 12));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref byte RamAt(ulong pa) => ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_ram), (nint)pa);

    /// <summary>Marks the frame of a physical address written, for the incremental state hash (PhysicalMemory.DirtyFrames).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void MarkDirty(ulong pa) => Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_dirty), (nint)(pa >> 12)) = 1;

    /// <summary>True when the bytes [lin, lin+size) of the frame in TLB entry e (within one page) hold no decoded code.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool NoCode(ulong e, uint lin, int size)
    {
        ulong lines = Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_codeLines), (nint)((e & FrameMask) >> 12));
        int o = (int)(lin & 0xFFF);
        return (lines & ((1ul << (o >> CodeLineShift)) | (1ul << ((o + size - 1) >> CodeLineShift)))) == 0;
    }

    /// <summary>
    /// For bulk string operations: true when [off, off+len) of segment seg lies in one page and
    /// every byte passes the read fast path (segment, TLB), so no access to it can fault; pa is
    /// the physical address of its first byte.
    /// </summary>
    internal bool FastReadRun(int seg, uint off, int len, out ulong pa)
    {
        pa = 0;
        ref SegmentCache s = ref SegAt(seg);
        if ((long)off + len > s.ReadEnd) return false;
        uint lin = s.Base + off;
        ulong e = TlbAt(lin);
        int o = (int)(lin & 0xFFF);
        if ((e & (GenMask | _tlbR)) != _tlbR || o + len > 0x1000) return false;
        pa = (e & FrameMask) | (uint)o;
        return true;
    }

    /// <summary>As <see cref="FastReadRun"/> for writes; also false when any byte is on a line holding decoded code.</summary>
    internal bool FastWriteRun(int seg, uint off, int len, out ulong pa)
    {
        pa = 0;
        ref SegmentCache s = ref SegAt(seg);
        if ((long)off + len > s.WriteEnd) return false;
        uint lin = s.Base + off;
        ulong e = TlbAt(lin);
        int o = (int)(lin & 0xFFF);
        if ((e & (GenMask | _tlbW)) != _tlbW || o + len > 0x1000) return false;
        int first = o >> CodeLineShift, last = (o + len - 1) >> CodeLineShift;
        ulong lines = (last == 63 ? ulong.MaxValue : (1ul << (last + 1)) - 1) & ~((1ul << first) - 1);
        if ((_codeLines[(int)((e & FrameMask) >> 12)] & lines) != 0) return false;
        pa = (e & FrameMask) | (uint)o;
        MarkDirty(pa);
        return true;
    }

    /// <summary>RAM at a physical address returned by <see cref="FastReadRun"/> or <see cref="FastWriteRun"/>.</summary>
    internal Span<byte> RamSpan(ulong pa, int len) => MemoryMarshal.CreateSpan(ref RamAt(pa), len);

    /// <summary>
    /// RAM for a read-modify-write of size bytes at seg:off when both the load and the store
    /// would take the fast path (writable expand-up segment within limits, which is also
    /// readable; cached write permission, which implies read permission and set A/D bits; one
    /// page; no decoded code): then neither access can fault. Otherwise a null reference, and
    /// the caller takes the checked read-then-write path.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ref byte RmwRef(int seg, uint off, int size)
    {
        ref SegmentCache s = ref SegAt(seg);
        if ((long)off + size <= s.WriteEnd)
        {
            uint lin = s.Base + off;
            ulong e = TlbAt(lin);
            if ((e & (GenMask | _tlbW)) == _tlbW && (lin & 0xFFF) <= 0x1000u - (uint)size && NoCode(e, lin, size))
            {
                MarkDirty(e & FrameMask);
                return ref RamAt((e & FrameMask) | (lin & 0xFFF));
            }
        }
        return ref Unsafe.NullRef<byte>();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static uint LoadRef(ref byte p, int size) =>
        size == 4 ? Unsafe.ReadUnaligned<uint>(ref p) : size == 2 ? Unsafe.ReadUnaligned<ushort>(ref p) : p;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void StoreRef(ref byte p, int size, uint v)
    {
        if (size == 4) Unsafe.WriteUnaligned(ref p, v);
        else if (size == 2) Unsafe.WriteUnaligned(ref p, (ushort)v);
        else p = (byte)v;
    }

    public byte Read8(int seg, uint off)
    {
        ref SegmentCache s = ref SegAt(seg);
        if ((long)off + 1 <= s.ReadEnd)
        {
            uint lin = s.Base + off;
            ulong e = TlbAt(lin);
            if ((e & (GenMask | _tlbR)) == _tlbR) return RamAt((e & FrameMask) | (lin & 0xFFF));
        }
        return (byte)ReadSlow(seg, off, 1);
    }

    public ushort Read16(int seg, uint off)
    {
        ref SegmentCache s = ref SegAt(seg);
        if ((long)off + 2 <= s.ReadEnd)
        {
            uint lin = s.Base + off;
            ulong e = TlbAt(lin);
            if ((e & (GenMask | _tlbR)) == _tlbR && (lin & 0xFFF) <= 0xFFE)
                return Unsafe.ReadUnaligned<ushort>(ref RamAt((e & FrameMask) | (lin & 0xFFF)));
        }
        return (ushort)ReadSlow(seg, off, 2);
    }

    public uint Read32(int seg, uint off)
    {
        ref SegmentCache s = ref SegAt(seg);
        if ((long)off + 4 <= s.ReadEnd)
        {
            uint lin = s.Base + off;
            ulong e = TlbAt(lin);
            if ((e & (GenMask | _tlbR)) == _tlbR && (lin & 0xFFF) <= 0xFFC)
                return Unsafe.ReadUnaligned<uint>(ref RamAt((e & FrameMask) | (lin & 0xFFF)));
        }
        return ReadSlow(seg, off, 4);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint Read(int seg, uint off, int size) => size switch
    {
        4 => Read32(seg, off),
        2 => Read16(seg, off),
        _ => Read8(seg, off),
    };

    public ulong Read64(int seg, uint off)
    {
        if (!CheckSegment(seg, off, 8, false, out uint lin)) return 0;
        ulong v = ReadLinear64(lin, Cpl == 3);
        if (_dataBreakpointsActive && !Faulted) NoteDataAccess(lin, 8, false);
        return v;
    }

    public void Write8(int seg, uint off, byte v)
    {
        ref SegmentCache s = ref SegAt(seg);
        if ((long)off + 1 <= s.WriteEnd)
        {
            uint lin = s.Base + off;
            ulong e = TlbAt(lin);
            if ((e & (GenMask | _tlbW)) == _tlbW && NoCode(e, lin, 1))
            {
                MarkDirty(e & FrameMask);
                RamAt((e & FrameMask) | (lin & 0xFFF)) = v;
                return;
            }
        }
        WriteSlow(seg, off, 1, v);
    }

    public void Write16(int seg, uint off, ushort v)
    {
        ref SegmentCache s = ref SegAt(seg);
        if ((long)off + 2 <= s.WriteEnd)
        {
            uint lin = s.Base + off;
            ulong e = TlbAt(lin);
            if ((e & (GenMask | _tlbW)) == _tlbW && (lin & 0xFFF) <= 0xFFE && NoCode(e, lin, 2))
            {
                MarkDirty(e & FrameMask);
                Unsafe.WriteUnaligned(ref RamAt((e & FrameMask) | (lin & 0xFFF)), v);
                return;
            }
        }
        WriteSlow(seg, off, 2, v);
    }

    public void Write32(int seg, uint off, uint v)
    {
        ref SegmentCache s = ref SegAt(seg);
        if ((long)off + 4 <= s.WriteEnd)
        {
            uint lin = s.Base + off;
            ulong e = TlbAt(lin);
            if ((e & (GenMask | _tlbW)) == _tlbW && (lin & 0xFFF) <= 0xFFC && NoCode(e, lin, 4))
            {
                MarkDirty(e & FrameMask);
                Unsafe.WriteUnaligned(ref RamAt((e & FrameMask) | (lin & 0xFFF)), v);
                return;
            }
        }
        WriteSlow(seg, off, 4, v);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Write(int seg, uint off, int size, uint v)
    {
        if (size == 4) Write32(seg, off, v);
        else if (size == 2) Write16(seg, off, (ushort)v);
        else Write8(seg, off, (byte)v);
    }

    public void Write64(int seg, uint off, ulong v)
    {
        if (!CheckSegment(seg, off, 8, true, out uint lin)) return;
        WriteLinear(lin, 8, v, Cpl == 3);
        if (_dataBreakpointsActive && !Faulted) NoteDataAccess(lin, 8, true);
    }

    /// <summary>
    /// Reads the destination of a read-modify-write. The write is checked first, so a #PF on a
    /// not-present page reports a write access (error code bit 1), as the processor does for the
    /// locked-style read of such instructions (found against the host by the differential tests).
    /// </summary>
    public uint ReadForWrite(int seg, uint off, int size)
    {
        if (!ProbeWrite(seg, off, size)) return 0;
        return Read(seg, off, size);
    }

    /// <summary>Checks that [off, off+size) may be written without writing it (for multi-part stores such as pusha).</summary>
    public bool ProbeWrite(int seg, uint off, int size)
    {
        if (!CheckSegment(seg, off, size, true, out uint lin)) return false;
        bool user = Cpl == 3;
        if (!Translate(lin, Access.Write, user, out _)) return false;
        uint last = lin + (uint)size - 1;
        // The second page is checked at its first byte: that is the address a #PF reports in CR2 (as WriteLinear does).
        return (last >> 12) == (lin >> 12) || Translate(last & ~0xFFFu, Access.Write, user, out _);
    }

    /// <summary>Segment protection and limit checks, SDM vol. 3 §5.3 and §3.4.5.1.</summary>
    public bool CheckSegment(int seg, uint off, int size, bool write, out uint lin)
    {
        ref SegmentCache s = ref SegAt(seg);
        lin = s.Base + off;
        if (!s.Usable || (write ? !s.Writable : !s.Readable) || !s.InLimits(off, size))
        {
            RaiseSegFault(seg);
            return false;
        }
        return true;
    }

    private uint ReadSlow(int seg, uint off, int size)
    {
        if (!CheckSegment(seg, off, size, false, out uint lin)) return 0;
        uint v = (uint)ReadLinear(lin, size, Cpl == 3);
        if (_dataBreakpointsActive && !Faulted) NoteDataAccess(lin, size, false);
        return v;
    }

    private void WriteSlow(int seg, uint off, int size, ulong v)
    {
        if (!CheckSegment(seg, off, size, true, out uint lin)) return;
        WriteLinear(lin, size, v, Cpl == 3);
        if (_dataBreakpointsActive && !Faulted) NoteDataAccess(lin, size, true);
    }

    /// <summary>Reads 1-8 bytes at a linear address; pages are translated before any byte is read.</summary>
    public ulong ReadLinear(uint lin, int size, bool user)
    {
        if (!Translate(lin, Access.Read, user, out ulong pa)) return 0;
        uint first = 0x1000 - (lin & 0xFFF);
        if (first >= (uint)size) return ReadPhys(pa, size);
        if (!Translate(lin + first, Access.Read, user, out ulong pa2)) return 0;
        return ReadPhys(pa, (int)first) | (ReadPhys(pa2, size - (int)first) << (int)(first * 8));
    }

    public ulong ReadLinear64(uint lin, bool user) => ReadLinear(lin, 8, user);

    /// <summary>Writes 1-8 bytes at a linear address; both pages are checked before any byte is written.</summary>
    public void WriteLinear(uint lin, int size, ulong v, bool user)
    {
        if (!Translate(lin, Access.Write, user, out ulong pa)) return;
        uint first = 0x1000 - (lin & 0xFFF);
        if (first >= (uint)size) { WritePhys(pa, size, v); return; }
        if (!Translate(lin + first, Access.Write, user, out ulong pa2)) return;
        WritePhys(pa, (int)first, v);
        WritePhys(pa2, size - (int)first, v >> (int)(first * 8));
    }

    private ulong ReadPhys(ulong pa, int size)
    {
        ulong v = 0;
        for (int i = 0; i < size; i++) v |= (ulong)Memory.Read8(pa + (ulong)i) << (i * 8);
        return v;
    }

    private void WritePhys(ulong pa, int size, ulong v)
    {
        switch (size)
        {
            case 1: Memory.Write8(pa, (byte)v); break;
            case 2: Memory.Write16(pa, (ushort)v); break;
            case 4: Memory.Write32(pa, (uint)v); break;
            case 8: Memory.Write64(pa, v); break;
            default:
                for (int i = 0; i < size; i++) Memory.Write8(pa + (ulong)i, (byte)(v >> (i * 8)));
                break;
        }
    }

    /// <summary>Supervisor (implicit) read of a system structure such as a descriptor table.</summary>
    public ulong ReadSystem(uint lin, int size) => ReadLinear(lin, size, false);

    public void WriteSystem(uint lin, int size, ulong v) => WriteLinear(lin, size, v, false);
}
