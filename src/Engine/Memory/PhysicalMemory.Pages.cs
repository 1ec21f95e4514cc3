namespace Replayvisor.Engine.Memory;

/// <summary>
/// RAM as immutable 4 KiB pages for snapshots. Pages that did not change between two snapshots
/// are the same array in both, so a ladder of snapshots costs the pages written between them,
/// not a copy of RAM each (copy-on-write by construction: a page is never modified once taken).
/// </summary>
public sealed class RamPages
{
    /// <summary>The shared all-zero page.</summary>
    internal static readonly byte[] Zero = new byte[PhysicalMemory.PageSize];

    internal RamPages(byte[][] frames) => Frames = frames;

    internal byte[][] Frames { get; }

    public int FrameCount => Frames.Length;

    /// <summary>The page of a frame (shared, never to be modified).</summary>
    public ReadOnlySpan<byte> Frame(int frame) => Frames[frame];

    /// <summary>The page arrays themselves, for accounting memory shared between snapshots.</summary>
    public IEnumerable<object> PageIdentities => Frames;
}

public sealed partial class PhysicalMemory
{
    /// <summary>Frames hashed clean since the last page capture or restore while they had been written (the hash clears its own marks).</summary>
    private readonly byte[] _changedSincePages;
    /// <summary>The pages RAM equals except in frames marked in <see cref="_dirty"/> or <see cref="_changedSincePages"/>.</summary>
    private RamPages? _lastPages;

    /// <summary>
    /// Captures RAM as pages, sharing every page that has not changed since the last capture or
    /// restore (and every all-zero page) with earlier captures.
    /// </summary>
    public RamPages CapturePages()
    {
        var last = _lastPages;
        var frames = new byte[FrameCount][];
        for (int f = 0; f < frames.Length; f++)
        {
            var span = _ram.AsSpan(f << PageShift, PageSize);
            bool maybeChanged = last == null || _dirty[f] != 0 || _changedSincePages[f] != 0;
            if (!maybeChanged) frames[f] = last!.Frames[f];
            else if (last != null && span.SequenceEqual(last.Frames[f])) frames[f] = last.Frames[f];
            else if (!span.ContainsAnyExcept((byte)0)) frames[f] = RamPages.Zero;
            else frames[f] = span.ToArray();
            _changedSincePages[f] = 0;
        }
        return _lastPages = new RamPages(frames);
    }

    /// <summary>
    /// Puts RAM back to <paramref name="pages"/>, copying only the frames that may differ. Copied
    /// frames are marked written (for the state hash); decoded code is dropped by the CPU's restore.
    /// </summary>
    public void RestorePages(RamPages pages)
    {
        ArgumentNullException.ThrowIfNull(pages);
        if (pages.FrameCount != FrameCount) throw new ArgumentException("snapshot RAM size differs", nameof(pages));
        var last = _lastPages;
        for (int f = 0; f < FrameCount; f++)
        {
            bool same = last != null && ReferenceEquals(last.Frames[f], pages.Frames[f]) && _dirty[f] == 0 && _changedSincePages[f] == 0;
            if (same) continue;
            pages.Frames[f].CopyTo(_ram.AsSpan(f << PageShift, PageSize));
            _dirty[f] = 1;
            _changedSincePages[f] = 0;
        }
        _lastPages = pages;
    }
}
