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

    /// <summary>
    /// Pages built from page-sized arrays (a keyframe read from a trace); a null entry is the
    /// shared all-zero page. The arrays are kept, not copied: the caller must not change them.
    /// </summary>
    public static RamPages FromFrames(byte[]?[] frames)
    {
        ArgumentNullException.ThrowIfNull(frames);
        var pages = new byte[frames.Length][];
        for (int f = 0; f < frames.Length; f++)
        {
            var page = frames[f] ?? Zero;
            if (page.Length != PhysicalMemory.PageSize) throw new ArgumentException($"frame {f} is not one page", nameof(frames));
            pages[f] = page;
        }
        return new RamPages(pages);
    }

    internal byte[][] Frames { get; }

    public int FrameCount => Frames.Length;

    /// <summary>The page of a frame (shared, never to be modified).</summary>
    public ReadOnlySpan<byte> Frame(int frame) => Frames[frame];

    /// <summary>The page arrays themselves, for accounting memory shared between snapshots.</summary>
    public IEnumerable<object> PageIdentities => Frames;
}

/// <summary>
/// Page snapshots. Two consumers want to know which frames were written: the state hash and the
/// page snapshots. Writers set one mark, <see cref="_dirty"/>; whichever consumer clears it hands
/// the news to the other (<see cref="_hashStale"/>, <see cref="_pagesStale"/>), so each sees every
/// write since it last looked and neither re-examines frames nobody wrote.
/// </summary>
public sealed partial class PhysicalMemory
{
    /// <summary>Frames written since the last hash whose <see cref="_dirty"/> mark a page capture or restore consumed.</summary>
    private readonly byte[] _hashStale;
    /// <summary>Frames written since the last page capture or restore whose <see cref="_dirty"/> mark the state hash consumed.</summary>
    private readonly byte[] _pagesStale;
    /// <summary>The pages RAM equals, except in frames marked in <see cref="_dirty"/> or <see cref="_pagesStale"/>.</summary>
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
            bool written = last == null || _dirty[f] != 0 || _pagesStale[f] != 0;
            if (!written) { frames[f] = last!.Frames[f]; continue; }
            var span = _ram.AsSpan(f << PageShift, PageSize);
            if (last != null && span.SequenceEqual(last.Frames[f])) frames[f] = last.Frames[f];
            else if (!span.ContainsAnyExcept((byte)0)) frames[f] = RamPages.Zero;
            else frames[f] = span.ToArray();
            if (_dirty[f] != 0) _hashStale[f] = 1;
            _dirty[f] = 0;
            _pagesStale[f] = 0;
        }
        return _lastPages = new RamPages(frames);
    }

    /// <summary>
    /// Puts RAM back to <paramref name="pages"/>, copying only the frames that may differ (copied
    /// frames are stale for the state hash; decoded code is dropped by the CPU's restore).
    /// </summary>
    public void RestorePages(RamPages pages)
    {
        ArgumentNullException.ThrowIfNull(pages);
        if (pages.FrameCount != FrameCount) throw new ArgumentException("snapshot RAM size differs", nameof(pages));
        var last = _lastPages;
        for (int f = 0; f < FrameCount; f++)
        {
            bool written = _dirty[f] != 0 || _pagesStale[f] != 0;
            if (last != null && !written && ReferenceEquals(last.Frames[f], pages.Frames[f])) continue;
            pages.Frames[f].CopyTo(_ram.AsSpan(f << PageShift, PageSize));
            _hashStale[f] = 1;
            _dirty[f] = 0;
            _pagesStale[f] = 0;
        }
        _lastPages = pages;
    }
}
