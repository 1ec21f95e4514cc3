using System.Runtime.CompilerServices;

namespace Replayvisor.Engine.Cpu;

/// <summary>Segment register indices, in x86 encoding order (SDM vol. 2 §3.1.1.3 "sreg").</summary>
public static class Seg
{
    public const int ES = 0, CS = 1, SS = 2, DS = 3, FS = 4, GS = 5, Count = 6;
    public static readonly string[] Names = ["es", "cs", "ss", "ds", "fs", "gs"];
}

/// <summary>
/// The hidden part of a segment register (SDM vol. 3 §3.4.3): the descriptor cached at load time,
/// plus precomputed bounds for the access fast path.
/// </summary>
public struct SegmentCache
{
    public ushort Selector;
    public uint Base;
    /// <summary>Effective byte limit (granularity applied).</summary>
    public uint Limit;
    /// <summary>Descriptor attribute bits: bits 0-7 = access byte (type, S, DPL, P), bit 10 = D/B, bit 11 = G.</summary>
    public ushort Attr;
    /// <summary>False for a null selector loaded into DS/ES/FS/GS: any access raises #GP(0).</summary>
    public bool Usable;
    /// <summary>Offsets with off + size &lt;= ReadEnd pass every check (expand-up, readable); 0 forces the checked path.</summary>
    public long ReadEnd;
    /// <summary>As <see cref="ReadEnd"/> for writes (expand-up writable data).</summary>
    public long WriteEnd;

    public readonly int Type => Attr & 0xF;
    public readonly bool IsSystem => (Attr & 0x10) == 0;
    public readonly int Dpl => (Attr >> 5) & 3;
    public readonly bool Present => (Attr & 0x80) != 0;
    public readonly bool Big => (Attr & 0x400) != 0;
    public readonly bool IsCode => !IsSystem && (Attr & 0x8) != 0;
    public readonly bool IsExpandDown => !IsSystem && (Attr & 0xC) == 0x4;
    public readonly bool Readable => !IsSystem && (!IsCode || (Attr & 0x2) != 0);
    public readonly bool Writable => !IsSystem && !IsCode && (Attr & 0x2) != 0;
    public readonly bool Conforming => IsCode && (Attr & 0x4) != 0;

    /// <summary>Recomputes the fast-path bounds after any field changes.</summary>
    public void Refresh()
    {
        long end = (long)Limit + 1;
        ReadEnd = Usable && Readable && !IsExpandDown ? end : 0;
        WriteEnd = Usable && Writable && !IsExpandDown ? end : 0;
    }

    /// <summary>Builds a cache from an 8-byte descriptor (SDM vol. 3 §3.4.5).</summary>
    public static SegmentCache FromDescriptor(ushort selector, ulong d)
    {
        uint lo = (uint)d, hi = (uint)(d >> 32);
        uint limit = (lo & 0xFFFF) | (hi & 0xF0000);
        bool g = (hi & 0x800000) != 0;
        if (g) limit = (limit << 12) | 0xFFF;
        var s = new SegmentCache
        {
            Selector = selector,
            Base = (lo >> 16) | ((hi & 0xFF) << 16) | (hi & 0xFF000000),
            Limit = limit,
            Attr = (ushort)(((hi >> 8) & 0xFF) | ((hi >> 12) & 0xF00)),
            Usable = true,
        };
        s.Refresh();
        return s;
    }

    /// <summary>A flat 4 GiB segment with the given access byte, as used by tests and resets.</summary>
    public static SegmentCache Flat(ushort selector, byte access)
    {
        var s = new SegmentCache { Selector = selector, Base = 0, Limit = 0xFFFFFFFF, Attr = (ushort)(access | 0xC00), Usable = true };
        s.Refresh();
        return s;
    }

    public static SegmentCache Null(ushort selector)
    {
        var s = new SegmentCache { Selector = selector };
        s.Refresh();
        return s;
    }

    /// <summary>True when [off, off+size) lies within the segment's limits (expand-down aware, SDM vol. 3 §5.3).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly bool InLimits(uint off, int size)
    {
        ulong last = (ulong)off + (ulong)(size - 1);
        if (!IsExpandDown) return last <= Limit;
        ulong upper = Big ? 0xFFFFFFFFul : 0xFFFFul;
        return off > Limit && last <= upper;
    }
}
