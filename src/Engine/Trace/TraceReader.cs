using System.Buffers.Binary;
using MessagePack;

namespace Replayvisor.Engine.Trace;

/// <summary>
/// Reads a .rvt trace from a seekable stream. <see cref="Open"/> validates the preamble, header
/// and guest image and finds the event chunks (from the index, or by scanning a trace whose
/// recorder never completed it). Events are decoded lazily, a chunk at a time.
/// </summary>
public sealed class TraceReader : IDisposable
{
    private readonly Stream _stream;
    private readonly bool _leaveOpen;
    private readonly ChunkSource _source;
    private readonly LoadedIndex _index;
    private readonly Dictionary<long, long> _previousOffset = [];

    private TraceReader(Stream stream, bool leaveOpen, ChunkSource source, TraceHeader header, byte[] image, LoadedIndex index, long imageOffset)
    {
        var previous = imageOffset;
        foreach (long offset in index.FileOrder ?? index.Chunks.Select(c => c.Offset).ToList())
        {
            _previousOffset.TryAdd(offset, previous);
            previous = offset;
        }
        _stream = stream;
        _leaveOpen = leaveOpen;
        _source = source;
        Header = header;
        GuestImage = image;
        _index = index;
        Stats = TraceStats.Of(index.Chunks);
    }

    /// <summary>The newest trace format version this reader reads (it reads every version from 1 up to this).</summary>
    public const int NewestFormatVersion = TraceLayout.FormatVersion;

    /// <summary>What the trace was recorded from: engine build, guest image name and hash, run options.</summary>
    public TraceHeader Header { get; }
    /// <summary>The guest kernel image stored in the trace (checked against the header's SHA-256).</summary>
    public ReadOnlyMemory<byte> GuestImage { get; }
    /// <summary>The format version found in the file.</summary>
    public int FormatVersion { get; private init; }
    /// <summary>True when the trace has a valid index and footer (the recorder called Complete).</summary>
    public bool Complete => _index.IncompleteReason is null;
    /// <summary>For an incomplete trace: one line saying why (no footer, cut-short chunk, damaged index).</summary>
    public string? IncompleteReason => _index.IncompleteReason;
    /// <summary>The event chunks, in file order (for an incomplete trace, those found by scanning).</summary>
    public IReadOnlyList<TraceChunkInfo> Index => _index.Chunks;
    /// <summary>The keyframe chunks (format 4): whole replay states to seek from; empty for a trace without them or an incomplete one.</summary>
    public IReadOnlyList<TraceKeyframeInfo> Keyframes => _index.Keyframes;
    /// <summary>How the run ended; null for an incomplete trace.</summary>
    public TraceSummary? Summary => _index.Summary;
    /// <summary>For an incomplete trace: the damaged chunk that ended the scan, if one did.</summary>
    public TraceFormatException? Damage => _index.Damage;
    /// <summary>Totals over <see cref="Index"/>: chunks, events, stored and raw bytes.</summary>
    public TraceStats Stats { get; }

    /// <summary>Opens and validates a trace starting at the stream's current position.</summary>
    /// <exception cref="TraceFormatException">The stream is not a readable trace.</exception>
    public static TraceReader Open(Stream stream, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanRead || !stream.CanSeek)
            throw new ArgumentException("The trace stream must be readable and seekable", nameof(stream));
        var source = new ChunkSource(stream, stream.Position);
        ReadPreamble(source);
        var header = ReadHeader(source, out var imageOffset, out var headerChain);
        var (imageHeader, image) = ReadChunkOfKind(source, imageOffset, headerChain, ChunkKind.GuestImage);
        if (TraceHeader.HashImage(image) != header.GuestImageSha256)
            throw new TraceFormatException(TraceError.ImageMismatch, imageOffset,
                $"the guest image does not match the header's SHA-256 {header.GuestImageSha256}");
        var eventsStart = source.End(imageOffset, imageHeader);
        var index = TraceIndexLoader.Load(source, eventsStart, imageHeader.Chain);
        return new TraceReader(stream, leaveOpen, source, header, image, index, imageOffset) { FormatVersion = source.Version };
    }

    /// <summary>
    /// Every event in file (icount) order. A damaged chunk throws <see cref="TraceFormatException"/>
    /// (<see cref="TraceError.DamagedChunk"/>, with its offset) after the events before it.
    /// </summary>
    public IEnumerable<TraceEvent> ReadEvents()
    {
        foreach (var chunk in Index)
            foreach (var traceEvent in ReadChunk(chunk))
                yield return traceEvent;
        if (Damage is not null)
            throw Damage;
    }

    /// <summary>The events of one chunk of <see cref="Index"/>, for seeking (a <see cref="ChunkEvents"/> for a compact chunk).</summary>
    public IReadOnlyList<TraceEvent> ReadChunk(TraceChunkInfo chunk) => ReadChunk(chunk, countOnly: false);

    /// <summary>
    /// How many of the events of one chunk of <see cref="Index"/> are <see cref="InputEvent"/>s. The
    /// chunk is checked exactly as <see cref="ReadChunk(TraceChunkInfo)"/> checks it (the same
    /// damage is found), but a compact chunk's hypercalls, upcalls and other columns are not kept:
    /// a replay looking for its next input passes chunks without any for less.
    /// </summary>
    public int ReadChunkInputCount(TraceChunkInfo chunk)
    {
        var events = ReadChunk(chunk, countOnly: true);
        if (events is ChunkEvents c) return c.InputCount;
        int n = 0;
        foreach (var e in events)
            if (e is InputEvent) n++;
        return n;
    }

    private IReadOnlyList<TraceEvent> ReadChunk(TraceChunkInfo chunk, bool countOnly)
    {
        ArgumentNullException.ThrowIfNull(chunk);
        // A chunk whose header disagrees with its index entry is damaged, even when the length it
        // claims runs past the end of the file (Truncated is only for the header and guest image).
        ChunkHeader header;
        byte[] raw;
        try
        {
            // The chain continues the chunk before this one in the index (the guest image for the first).
            var previousChain = _previousOffset.TryGetValue(chunk.Offset, out var previous) ? _source.ChainAt(previous) : (uint?)null;
            header = _source.ReadHeader(chunk.Offset, previousChain);
            if (!EventChunkDecoder.HoldsEvents(header.Kind, FormatVersion))
                throw ChunkHeader.Damaged(chunk.Offset, $"expected an events chunk, found {header.Kind}");
            if (header.StoredLength != chunk.StoredLength || header.RawLength != chunk.RawLength)
                throw ChunkHeader.Damaged(chunk.Offset, "the chunk does not match its index entry");
            raw = _source.ReadPayload(chunk.Offset, header);
        }
        catch (TraceFormatException ex) when (ex.Error == TraceError.Truncated)
        {
            throw ChunkHeader.Damaged(chunk.Offset, "the chunk runs past the end of the trace", ex);
        }
        var events = EventChunkDecoder.Decode(raw, chunk.Offset, header.Kind, countOnly);
        if (EventChunkDecoder.Describe(chunk.Offset, header, events) != chunk)
            throw ChunkHeader.Damaged(chunk.Offset, "the chunk does not match its index entry");
        return events;
    }

    /// <summary>
    /// The payload of a keyframe chunk of <see cref="Keyframes"/>, checked (chain, CRC-32C, lengths
    /// against the index entry) and decompressed; a damaged one is <see cref="TraceError.DamagedChunk"/> at its offset.
    /// </summary>
    public byte[] ReadKeyframe(TraceKeyframeInfo keyframe)
    {
        ArgumentNullException.ThrowIfNull(keyframe);
        try
        {
            var previousChain = _previousOffset.TryGetValue(keyframe.Offset, out var previous) ? _source.ChainAt(previous) : (uint?)null;
            var header = _source.ReadHeader(keyframe.Offset, previousChain);
            if (header.Kind != ChunkKind.Keyframe)
                throw ChunkHeader.Damaged(keyframe.Offset, $"expected a {ChunkKind.Keyframe} chunk, found {header.Kind}");
            if (header.StoredLength != keyframe.StoredLength || header.RawLength != keyframe.RawLength)
                throw ChunkHeader.Damaged(keyframe.Offset, "the keyframe does not match its index entry");
            return _source.ReadPayload(keyframe.Offset, header);
        }
        catch (TraceFormatException ex) when (ex.Error == TraceError.Truncated)
        {
            throw ChunkHeader.Damaged(keyframe.Offset, "the keyframe runs past the end of the trace", ex);
        }
    }

    /// <summary>Closes the stream unless the reader was opened with leaveOpen.</summary>
    public void Dispose()
    {
        if (!_leaveOpen)
            _stream.Dispose();
    }

    private static void ReadPreamble(ChunkSource source)
    {
        if (source.Length == 0)
            throw new TraceFormatException(TraceError.Empty, null, "the trace is empty (the recorder stopped before writing anything)");
        var start = source.TryReadBytes(0, (int)Math.Min(source.Length, TraceLayout.PreambleSize))!;
        var magic = TraceLayout.Magic;
        if (!start.AsSpan(0, Math.Min(start.Length, magic.Length)).SequenceEqual(magic[..Math.Min(start.Length, magic.Length)]))
            throw new TraceFormatException(TraceError.NotATrace, 0, "not a Replayvisor trace (no RVTRACE magic)");
        if (start.Length < TraceLayout.PreambleSize)
            throw new TraceFormatException(TraceError.Truncated, 0, "the trace ends inside its preamble");
        var version = BinaryPrimitives.ReadUInt16LittleEndian(start.AsSpan(magic.Length));
        if (version > TraceLayout.FormatVersion)
            throw new TraceFormatException(TraceError.NewerFormat, magic.Length,
                $"trace format version {version} is newer than this build reads ({TraceLayout.FormatVersion})")
            { FormatVersion = version };
        if (version < TraceLayout.OldestReadableVersion)
            throw new TraceFormatException(TraceError.BadHeader, magic.Length, $"trace format version {version} is invalid");
        source.Version = version;
        source.PreambleChain = Crc32C.Compute(start);
    }

    private static TraceHeader ReadHeader(ChunkSource source, out long nextOffset, out uint chain)
    {
        const long offset = TraceLayout.PreambleSize;
        try
        {
            var (chunkHeader, raw) = ReadChunkOfKind(source, offset, source.PreambleChain, ChunkKind.Header);
            nextOffset = source.End(offset, chunkHeader);
            chain = chunkHeader.Chain;
            var header = MessagePackSerializer.Deserialize<TraceHeader>(raw, TraceMessagePack.Options)
                ?? throw new MessagePackSerializationException("nil header");
            // The fields are non-nullable for every reader of the header: nil ones are damage.
            if (header.EngineBuild is null || header.GuestImageName is null || header.GuestKind is null
                || header.GuestImageSha256 is not { Length: 64 } hash || !hash.All(char.IsAsciiHexDigitLower))
                throw new TraceFormatException(TraceError.BadHeader, offset, "bad trace header: a field is missing or the image hash is not a SHA-256");
            return header;
        }
        catch (TraceFormatException ex) when (ex.Error == TraceError.DamagedChunk)
        {
            throw new TraceFormatException(TraceError.BadHeader, offset, $"bad trace header: {ex.Reason}", ex);
        }
        catch (MessagePackSerializationException ex)
        {
            throw new TraceFormatException(TraceError.BadHeader, offset, "bad trace header: it does not decode", ex);
        }
    }

    private static (ChunkHeader Header, byte[] Raw) ReadChunkOfKind(ChunkSource source, long offset, uint previousChain, ChunkKind kind)
    {
        var (header, raw) = source.Read(offset, previousChain);
        if (header.Kind != kind)
            throw ChunkHeader.Damaged(offset, $"expected a {kind} chunk, found {header.Kind}");
        return (header, raw);
    }
}
