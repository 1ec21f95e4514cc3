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
/// valid footer, by scanning chunk after chunk up to the last complete one.
/// </summary>
internal static class TraceIndexLoader
{
    public static LoadedIndex Load(ChunkSource source, long eventsStart)
    {
        return TryLoadFromFooter(source, eventsStart, out var problem) ?? Scan(source, eventsStart, problem);
    }

    /// <summary>The index of a completed trace, or null and why the footer or index is unusable.</summary>
    private static LoadedIndex? TryLoadFromFooter(ChunkSource source, long eventsStart, out string problem)
    {
        problem = "";
        var footerOffset = source.Length - TraceLayout.FooterSize;
        var footer = footerOffset >= eventsStart ? source.TryReadBytes(footerOffset, TraceLayout.FooterSize) : null;
        if (footer is null || !footer.AsSpan(8).SequenceEqual(TraceLayout.EndMagic))
            return Fail(out problem, "there is no footer: the recorder stopped before completing the trace");
        var indexOffset = BinaryPrimitives.ReadInt64LittleEndian(footer);
        if (indexOffset < eventsStart || indexOffset > footerOffset - TraceLayout.ChunkHeaderSize)
            return Fail(out problem, $"the footer at offset {footerOffset} points outside the trace ({indexOffset})");
        try
        {
            var (header, raw) = source.Read(indexOffset);
            if (header.Kind != ChunkKind.Index || ChunkSource.End(indexOffset, header) != footerOffset)
                return Fail(out problem, $"the footer at offset {footerOffset} does not point at an index chunk");
            var index = MessagePackSerializer.Deserialize<TraceIndexPayload>(raw, TraceMessagePack.Options);
            if (index?.Summary is null || !IsConsistent(index.Chunks, eventsStart, indexOffset))
                return Fail(out problem, $"the index chunk at offset {indexOffset} is inconsistent");
            return new LoadedIndex(index.Chunks.ToArray(), index.Summary, null, null);
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

    private static bool IsConsistent(EquatableArray<TraceChunkInfo> chunks, long eventsStart, long indexOffset)
    {
        var next = eventsStart;
        foreach (var chunk in chunks)
        {
            if (chunk is null || chunk.Offset != next || chunk.StoredLength < 0 || chunk.RawLength < 0 || chunk.EventCount < 1
                || chunk.FirstIcount > chunk.LastIcount)
                return false;
            next = chunk.Offset + TraceLayout.ChunkHeaderSize + chunk.StoredLength;
        }
        return next == indexOffset;
    }

    private static LoadedIndex Scan(ChunkSource source, long eventsStart, string noFooterReason)
    {
        var chunks = new List<TraceChunkInfo>();
        var offset = eventsStart;
        var reason = noFooterReason;
        while (offset < source.Length)
        {
            try
            {
                var header = source.ReadHeader(offset);
                if (header.Kind == ChunkKind.Index)
                    break; // the events end here; the index itself was unusable
                if (header.Kind != ChunkKind.Events)
                    throw ChunkHeader.Damaged(offset, $"unexpected {header.Kind} chunk among the events");
                var events = EventChunkDecoder.Decode(source.ReadPayload(offset, header), offset);
                chunks.Add(EventChunkDecoder.Describe(offset, header, events));
                offset = ChunkSource.End(offset, header);
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
}
