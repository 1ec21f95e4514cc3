using System.Runtime.CompilerServices;

namespace Replayvisor.Engine.Memory;

/// <summary>Receives notice that bytes of a frame holding decoded code were written (self-modifying code).</summary>
public interface ICodeWriteObserver
{
    /// <summary>Bytes [addr, addr+len) of a frame holding decoded code were written.</summary>
    void OnCodeWritten(ulong addr, int len);
}

/// <summary>
/// The per-frame marks over RAM, all owned here:
/// <list type="bullet">
/// <item><b>Code lines</b>: per frame, one bit per 64-byte line that holds bytes of a cached
/// decoded block. A frame with any bit set is a code frame: every write to it through this class
/// goes to <see cref="CodeObserver"/> (the block cache). The CPU's store fast path reads the array
/// directly and leaves the fast path only for stores that touch a marked line.</item>
/// <item><b>Dirty frames</b>: 1 when the frame was written since the last state hash. Every
/// writer of RAM sets it: this class's methods, and the CPU's store fast paths, which write the
/// array directly.</item>
/// </list>
/// The block cache is the only one that sets or clears code lines (when it caches or drops a block).
/// </summary>
public sealed partial class PhysicalMemory
{
    /// <summary>log2 of the size of a code line (64 bytes, 64 lines per frame).</summary>
    public const int CodeLineShift = 6;

    private readonly ulong[] _codeLines;
    private readonly byte[] _dirty;

    /// <summary>Per frame, the code-line bits (read directly by the CPU's store fast path).</summary>
    internal ulong[] CodeLines => _codeLines;

    /// <summary>Per frame, 1 when written since the last state hash (set directly by the CPU's store fast paths).</summary>
    internal byte[] DirtyFrames => _dirty;

    /// <summary>Told about writes (through this class) to frames holding decoded code.</summary>
    public ICodeWriteObserver? CodeObserver { get; set; }

    public bool IsCodeFrame(uint frame) => frame < FrameCount && _codeLines[frame] != 0;

    /// <summary>The code-line bits of bytes [offset, offset + length) of a frame (lines past the frame are cut off).</summary>
    public static ulong CodeLineMask(uint offset, uint length)
    {
        int first = (int)offset >> CodeLineShift;
        ulong lastByte = (ulong)offset + length - 1;
        int last = lastByte >= PageSize ? 63 : (int)lastByte >> CodeLineShift;
        ulong upTo = last == 63 ? ulong.MaxValue : (1ul << (last + 1)) - 1;
        return upTo & ~((1ul << first) - 1);
    }

    internal void AddCodeLines(uint frame, ulong lines) { if (frame < FrameCount) _codeLines[frame] |= lines; }

    internal void SetCodeLines(uint frame, ulong lines) { if (frame < FrameCount) _codeLines[frame] = lines; }

    internal void ClearCodeLines() => Array.Clear(_codeLines);

    internal void MarkAllDirty() => Array.Fill(_dirty, (byte)1);

    /// <summary>Every write made through this class: marks the frames dirty and reports writes to code frames.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void NoteWrite(ulong addr, int len)
    {
        uint first = (uint)(addr >> PageShift);
        uint last = (uint)((addr + (ulong)len - 1) >> PageShift);
        bool code = false;
        for (uint f = first; f <= last && f < FrameCount; f++)
        {
            _dirty[f] = 1;
            code |= _codeLines[f] != 0;
        }
        if (code) CodeObserver?.OnCodeWritten(addr, len);
    }
}
