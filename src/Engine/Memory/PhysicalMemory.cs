using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.IO.Hashing;
using Replayvisor.Engine.State;

namespace Replayvisor.Engine.Memory;

/// <summary>
/// The machine's RAM, addressed by machine physical address. Frames past the end of RAM read as
/// all ones and ignore writes (an open bus). Every write made through this class reports writes
/// to frames holding decoded code (so decoded blocks are invalidated) and marks the frame dirty
/// for the state hash; the marks themselves are in PhysicalMemory.Marks.cs.
/// <para>State hashing is incremental: each frame's XxHash128 is cached and recomputed only when
/// the frame was written since the last hash.</para>
/// </summary>
public sealed partial class PhysicalMemory : IStateHashable
{
    public const int PageShift = 12;
    public const int PageSize = 1 << PageShift;
    public const uint PageMask = PageSize - 1;

    private readonly byte[] _ram;
    private readonly UInt128[] _frameHash;

    public PhysicalMemory(uint frames)
    {
        if (frames == 0 || frames > (1u << 20))
            throw new ArgumentOutOfRangeException(nameof(frames), "RAM must be between 4 KiB and 4 GiB");
        // Zeroed by the runtime, which clears only memory it reuses: fresh memory from the OS is zero
        // already, and its pages are touched (faulted in) only where the guest or the builder writes,
        // not all 8,192 of a 32 MiB guest up front.
        _ram = new byte[checked((int)Math.Min((ulong)frames * PageSize, int.MaxValue & ~PageMask))];
        FrameCount = (uint)(_ram.Length >> PageShift);
        _codeLines = new ulong[FrameCount];
        _dirty = new byte[FrameCount];
        _frameHash = new UInt128[FrameCount];
        _hashStale = new byte[FrameCount];
        _pagesStale = new byte[FrameCount];
        // RAM starts all zero: every frame starts clean with the hash of a zero page, so the first
        // state hash reads only the frames written since (not all of RAM).
        Array.Fill(_frameHash, ZeroFrameHash);
    }

    private static readonly UInt128 ZeroFrameHash = LongXxHash128.Hash(new byte[PageSize]);

    public uint FrameCount { get; }
    public ulong Size => (ulong)FrameCount << PageShift;

    /// <summary>Raw RAM for the CPU fast path and snapshots. Writers must call <see cref="NoteWrite"/>.</summary>
    internal byte[] Ram => _ram;

    public bool IsValidFrame(ulong frame) => frame < FrameCount;
    public bool Contains(ulong addr, int len) => addr + (ulong)len <= Size && addr + (ulong)len >= addr;

    public byte Read8(ulong pa) => pa < (ulong)_ram.Length ? _ram[pa] : (byte)0xFF;

    public ushort Read16(ulong pa) => pa + 2 <= (ulong)_ram.Length
        ? BinaryPrimitives.ReadUInt16LittleEndian(_ram.AsSpan((int)pa)) : (ushort)(Read8(pa) | (Read8(pa + 1) << 8));

    public uint Read32(ulong pa) => pa + 4 <= (ulong)_ram.Length
        ? BinaryPrimitives.ReadUInt32LittleEndian(_ram.AsSpan((int)pa)) : Read16(pa) | ((uint)Read16(pa + 2) << 16);

    public ulong Read64(ulong pa) => pa <= (ulong)_ram.Length - 8
        ? BinaryPrimitives.ReadUInt64LittleEndian(_ram.AsSpan((int)pa)) : Read32(pa) | ((ulong)Read32(pa + 4) << 32);

    public void Write8(ulong pa, byte v)
    {
        if (pa >= (ulong)_ram.Length) return;
        _ram[pa] = v;
        NoteWrite(pa, 1);
    }

    public void Write16(ulong pa, ushort v)
    {
        if (pa + 2 > (ulong)_ram.Length) { Write8(pa, (byte)v); Write8(pa + 1, (byte)(v >> 8)); return; }
        BinaryPrimitives.WriteUInt16LittleEndian(_ram.AsSpan((int)pa), v);
        NoteWrite(pa, 2);
    }

    public void Write32(ulong pa, uint v)
    {
        if (pa + 4 > (ulong)_ram.Length) { Write16(pa, (ushort)v); Write16(pa + 2, (ushort)(v >> 16)); return; }
        BinaryPrimitives.WriteUInt32LittleEndian(_ram.AsSpan((int)pa), v);
        NoteWrite(pa, 4);
    }

    public void Write64(ulong pa, ulong v)
    {
        Write32(pa, (uint)v);
        Write32(pa + 4, (uint)(v >> 32));
    }

    /// <summary>Copies bytes into RAM (bytes past the end of RAM are dropped).</summary>
    public void WriteBytes(ulong pa, ReadOnlySpan<byte> data)
    {
        if (pa >= (ulong)_ram.Length || data.IsEmpty) return;
        int n = (int)Math.Min((ulong)data.Length, (ulong)_ram.Length - pa);
        data[..n].CopyTo(_ram.AsSpan((int)pa, n));
        NoteWrite(pa, n);
    }

    /// <summary>Copies bytes out of RAM (bytes past the end read as 0xFF).</summary>
    public void ReadBytes(ulong pa, Span<byte> into)
    {
        into.Fill(0xFF);
        if (pa >= (ulong)_ram.Length) return;
        int n = (int)Math.Min((ulong)into.Length, (ulong)_ram.Length - pa);
        _ram.AsSpan((int)pa, n).CopyTo(into);
    }

    public void ClearFrame(uint frame)
    {
        if (frame >= FrameCount) return;
        Array.Clear(_ram, (int)(frame << PageShift), PageSize);
        NoteWrite((ulong)frame << PageShift, PageSize);
    }

    public ReadOnlySpan<byte> FrameBytes(uint frame) => _ram.AsSpan((int)(frame << PageShift), PageSize);

    /// <summary>RAM in canonical form: the frame count, then each frame's XxHash128 (cached while the frame is clean).</summary>
    // Full optimisation from the first call: a recording hashes only at checkpoints, too rarely for tiered JIT to reach this loop.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void WriteState(CanonicalWriter w)
    {
        w.Tag("ram");
        w.U32(FrameCount);
        // The marked frames found a vector at a time (most of RAM is clean between two checkpoints).
        RehashMarked(_dirty);
        RehashMarked(_hashStale);
        // The cached hashes in frame order, each as 16 little-endian bytes: hashed where they lie.
        if (BitConverter.IsLittleEndian) w.RawInPlace(MemoryMarshal.AsBytes(_frameHash.AsSpan()));
        else foreach (UInt128 h in _frameHash) w.U128(h);
    }

    /// <summary>Recomputes the cached hash of every frame marked in <paramref name="marks"/> (clearing both marks).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // see WriteState
    private void RehashMarked(byte[] marks)
    {
        int f = 0;
        while (true)
        {
            int next = marks.AsSpan(f).IndexOfAnyExcept((byte)0);
            if (next < 0) return;
            f += next;
            _frameHash[f] = LongXxHash128.Hash(_ram.AsSpan(f << PageShift, PageSize)); // XxHash128's value
            if (_dirty[f] != 0) _pagesStale[f] = 1; // the page snapshots still need to know (PhysicalMemory.Pages.cs)
            _dirty[f] = 0;
            _hashStale[f] = 0;
            f++;
        }
    }

    /// <summary>The RAM hash computed from scratch, ignoring the cache (to check the dirty tracking).</summary>
    internal UInt128 FrameHashUncached(uint frame) => XxHash128.HashToUInt128(_ram.AsSpan((int)(frame << PageShift), PageSize));

    /// <summary>Frames whose cached hash is stale although they are marked clean: a writer that forgot to mark them dirty (for tests).</summary>
    internal List<uint> StaleCleanFrames()
    {
        var stale = new List<uint>();
        for (uint f = 0; f < FrameCount; f++)
            if (_dirty[f] == 0 && _hashStale[f] == 0 && FrameHashUncached(f) != _frameHash[f]) stale.Add(f);
        return stale;
    }

    /// <summary>A copy of RAM for a snapshot.</summary>
    public byte[] SnapshotBytes() => (byte[])_ram.Clone();

    /// <summary>Restores RAM from a snapshot of the same size. Every frame becomes dirty; decoded code is dropped by the CPU's restore.</summary>
    public void RestoreBytes(byte[] image)
    {
        if (image.Length != _ram.Length) throw new ArgumentException("snapshot RAM size differs", nameof(image));
        image.CopyTo(_ram, 0);
        MarkAllDirty();
        _lastPages = null;
    }
}
