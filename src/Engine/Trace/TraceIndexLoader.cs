using System.Buffers.Binary;
using MessagePack;

namespace Replayvisor.Engine.Trace;

/// <summary>What the reader knows about a trace's event chunks.</summary>
internal sealed record LoadedIndex(
    IReadOnlyList<TraceChunkInfo> Chunks,
    TraceSummary? Summary,
    string? IncompleteReason,
    TraceFormatException? Damage)
{
    /// <summary>The keyframe chunks the index lists (format 4; none for an incomplete trace).</summary>
    public IReadOnlyList<TraceKeyframeInfo> Keyframes { get; init; } = [];
    /// <summary>The offsets of every events and keyframe chunk in file order (each chunk's chain continues the one before).</summary>
    public IReadOnlyList<long>? FileOrder { get; init; }
}

/// <summary>
/// Finds the event chunks: from the footer and index of a completed trace, or, when there is no
/// valid footer, by scanning chunk after chunk up to the last complete one (docs/trace-format.md "Reading").
/// </summary>
internal static class TraceIndexLoader
{
    /// <param name="source">The trace being read.</param>
    /// <param name="eventsStart">The offset just past the GuestImage chunk.</param>
    /// <param name="imageChain">The GuestImage chunk's chain value, which the first events chunk continues.</param>
    public static LoadedIndex Load(ChunkSource source, long eventsStart, uint imageChain)
    {
        return TryLoadFromFooter(source, eventsStart, imageChain, out var problem) ?? Scan(source, eventsStart, imageChain, problem);
    }

    /// <summary>The index of a completed trace, or null and why the footer or index is unusable.</summary>
    private static LoadedIndex? TryLoadFromFooter(ChunkSource source, long eventsStart, uint imageChain, out string problem)
    {
        problem = "";
        var footerOffset = source.Length - TraceLayout.FooterSize;
        var footer = footerOffset >= eventsStart ? source.TryReadBytes(footerOffset, TraceLayout.FooterSize) : null;
        if (footer is null || !footer.AsSpan(8).SequenceEqual(TraceLayout.EndMagic))
            return Fail(out problem, "there is no footer: the recorder stopped before completing the trace");
        var indexOffset = BinaryPrimitives.ReadInt64LittleEndian(footer);
        if (indexOffset < eventsStart || indexOffset > footerOffset - source.HeaderSize)
            return Fail(out problem, $"the footer at offset {footerOffset} points outside the trace ({indexOffset})");
        try
        {
            // The index chunk's chain continues the last events chunk, known only once the index is decoded.
            var (header, raw) = source.Read(indexOffset, previousChain: null);
            if (header.Kind != ChunkKind.Index || source.End(indexOffset, header) != footerOffset)
                return Fail(out problem, $"the footer at offset {footerOffset} does not point at an index chunk");
            var index = MessagePackSerializer.Deserialize<KeyframedIndexPayload>(raw, TraceMessagePack.Options);
            var keyframes = index?.Keyframes.ToArray() ?? [];
            if (keyframes.Length > 0 && source.Version < TraceLayout.KeyframesVersion)
                return Fail(out problem, $"the index chunk at offset {indexOffset} lists keyframes, which format {source.Version} does not have");
            var order = index?.Summary is null ? null : FileOrder(source, index.Chunks, keyframes, eventsStart, indexOffset);
            if (order is null)
                return Fail(out problem, $"the index chunk at offset {indexOffset} is inconsistent");
            source.CheckChain(indexOffset, order.Count == 0 ? imageChain : source.ChainAt(order[^1]));
            return new LoadedIndex(index!.Chunks.ToArray(), index.Summary, null, null) { Keyframes = keyframes, FileOrder = order };
        }
        catch (TraceFormatException ex)
        {
            return Fail(out problem, $"the index chunk is unreadable: {ex.Message}");
        }
        catch (MessagePackSerializationException)
        {
            return Fail(out problem, $"the index chunk at offset {indexOffset} does not decode");
        }
    }

    private static LoadedIndex? Fail(out string problem, string why)
    {
        problem = why;
        return null;
    }

    /// <summary>
    /// The offsets of the events and keyframe chunks in file order, if they lie back to back from
    /// the end of the guest image to the index: events chunks non-empty with instruction counts
    /// never falling, keyframes in instruction-count order. Null when the index is inconsistent.
    /// </summary>
    private static List<long>? FileOrder(ChunkSource source, EquatableArray<TraceChunkInfo> chunks, TraceKeyframeInfo[] keyframes, long eventsStart, long indexOffset)
    {
        var spans = new List<(long Offset, int Stored)>();
        ulong lastIcount = 0;
        long lastOffset = -1;
        foreach (var chunk in chunks)
        {
            if (chunk is null || chunk.Offset <= lastOffset || chunk.StoredLength < 0 || chunk.RawLength < 0 || chunk.EventCount < 1
                || chunk.FirstIcount > chunk.LastIcount || chunk.FirstIcount < lastIcount)
                return null;
            spans.Add((chunk.Offset, chunk.StoredLength));
            lastIcount = chunk.LastIcount;
            lastOffset = chunk.Offset;
        }
        ulong lastKeyframe = 0;
        lastOffset = -1;
        foreach (var k in keyframes)
        {
            if (k is null || k.Offset <= lastOffset || k.StoredLength < 0 || k.RawLength < 0 || k.Icount < lastKeyframe || k.Layout is null) return null;
            spans.Add((k.Offset, k.StoredLength));
            lastKeyframe = k.Icount;
            lastOffset = k.Offset;
        }
        // Events chunks keep their order among themselves; a keyframe may sit anywhere between them.
        spans.Sort((a, b) => a.Offset.CompareTo(b.Offset));
        var next = eventsStart;
        foreach (var (offset, stored) in spans)
        {
            if (offset != next) return null;
            next = offset + source.HeaderSize + stored;
        }
        return next == indexOffset ? spans.Select(s => s.Offset).ToList() : null;
    }

    private static LoadedIndex Scan(ChunkSource source, long eventsStart, uint imageChain, string noFooterReason)
    {
        var chunks = new List<TraceChunkInfo>();
        var order = new List<long>();
        var offset = eventsStart;
        var reason = noFooterReason;
        var chain = imageChain;
        ulong lastIcount = 0;
        while (offset < source.Length)
        {
            try
            {
                var header = source.ReadHeader(offset, chain);
                if (header.Kind == ChunkKind.Index)
                    return AtIndex(source, offset, header, chunks, reason) with { FileOrder = order };
                if (header.Kind == ChunkKind.Keyframe && source.Version >= TraceLayout.KeyframesVersion)
                {
                    // Checked and passed over: without the index a keyframe's state cannot be matched to its position.
                    source.ReadPayload(offset, header);
                    order.Add(offset);
                    chain = header.Chain;
                    offset = source.End(offset, header);
                    continue;
                }
                if (!EventChunkDecoder.HoldsEvents(header.Kind, source.Version))
                    throw ChunkHeader.Damaged(offset, $"unexpected {header.Kind} chunk among the events");
                var events = EventChunkDecoder.Decode(source.ReadPayload(offset, header), offset, header.Kind);
                var info = EventChunkDecoder.Describe(offset, header, events);
                if (info.FirstIcount < lastIcount)
                    throw ChunkHeader.Damaged(offset, $"its first event (instruction {info.FirstIcount}) comes before the last event of the chunk before it (instruction {lastIcount})");
                chunks.Add(info);
                order.Add(offset);
                chain = header.Chain;
                lastIcount = info.LastIcount;
                offset = source.End(offset, header);
            }
            catch (TraceFormatException ex) when (ex.Error == TraceError.Truncated)
            {
                reason += $"; the last chunk, at offset {offset}, is cut short and was dropped";
                break;
            }
            catch (TraceFormatException ex)
            {
                return new LoadedIndex(chunks, null, reason, ex) { FileOrder = order };
            }
        }
        return new LoadedIndex(chunks, null, reason, null) { FileOrder = order };
    }

    /// <summary>
    /// The scan met the index chunk, so the recorder completed the trace: everything before it is
    /// there. A missing footer (or a cut index) is a truncation; anything else after it is damage.
    /// </summary>
    private static LoadedIndex AtIndex(ChunkSource source, long offset, in ChunkHeader header, List<TraceChunkInfo> chunks, string reason)
    {
        try
        {
            source.ReadPayload(offset, header);
        }
        catch (TraceFormatException ex) when (ex.Error == TraceError.Truncated)
        {
            return new LoadedIndex(chunks, null, $"the trace ends inside its index chunk (at offset {offset})", null);
        }
        catch (TraceFormatException ex)
        {
            return new LoadedIndex(chunks, null, reason, ex);
        }
        var end = source.End(offset, header);
        if (end == source.Length)
            return new LoadedIndex(chunks, null, $"the trace ends after its index chunk: the footer is missing", null);
        if (end + TraceLayout.FooterSize > source.Length)
            return new LoadedIndex(chunks, null, $"the trace ends inside its footer (at offset {end})", null);
        return new LoadedIndex(chunks, null, reason,
            new TraceFormatException(TraceError.DamagedChunk, end, $"damaged footer: {reason}"));
    }
}
