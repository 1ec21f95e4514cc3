using System.Buffers.Binary;
using MessagePack;

namespace Replayvisor.Engine.Trace;

/// <summary>What the reader knows about a trace's event chunks.</summary>
internal sealed record LoadedIndex(
    IReadOnlyList<TraceChunkInfo> Chunks,
    TraceSummary? Summary,
    string? IncompleteReason,
    TraceFormatException? Damage);

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
            var index = MessagePackSerializer.Deserialize<TraceIndexPayload>(raw, TraceMessagePack.Options);
            if (index?.Summary is null || !IsConsistent(source, index.Chunks, eventsStart, indexOffset))
                return Fail(out problem, $"the index chunk at offset {indexOffset} is inconsistent");
            var chunks = index.Chunks.ToArray();
            source.CheckChain(indexOffset, chunks.Length == 0 ? imageChain : source.ChainAt(chunks[^1].Offset));
            return new LoadedIndex(chunks, index.Summary, null, null);
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

    /// <summary>Chunks back to back from the end of the guest image to the index, each non-empty, instruction counts never falling.</summary>
    private static bool IsConsistent(ChunkSource source, EquatableArray<TraceChunkInfo> chunks, long eventsStart, long indexOffset)
    {
        var next = eventsStart;
        ulong lastIcount = 0;
        foreach (var chunk in chunks)
        {
            if (chunk is null || chunk.Offset != next || chunk.StoredLength < 0 || chunk.RawLength < 0 || chunk.EventCount < 1
                || chunk.FirstIcount > chunk.LastIcount || chunk.FirstIcount < lastIcount)
                return false;
            next = chunk.Offset + source.HeaderSize + chunk.StoredLength;
            lastIcount = chunk.LastIcount;
        }
        return next == indexOffset;
    }

    private static LoadedIndex Scan(ChunkSource source, long eventsStart, uint imageChain, string noFooterReason)
    {
        var chunks = new List<TraceChunkInfo>();
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
                    return AtIndex(source, offset, header, chunks, reason);
                if (!EventChunkDecoder.HoldsEvents(header.Kind, source.Version))
                    throw ChunkHeader.Damaged(offset, $"unexpected {header.Kind} chunk among the events");
                var events = EventChunkDecoder.Decode(source.ReadPayload(offset, header), offset, header.Kind);
                var info = EventChunkDecoder.Describe(offset, header, events);
                if (info.FirstIcount < lastIcount)
                    throw ChunkHeader.Damaged(offset, $"its first event (instruction {info.FirstIcount}) comes before the last event of the chunk before it (instruction {lastIcount})");
                chunks.Add(info);
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
                return new LoadedIndex(chunks, null, reason, ex);
            }
        }
        return new LoadedIndex(chunks, null, reason, null);
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
