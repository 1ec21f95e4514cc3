using MessagePack;
using Replayvisor.Engine.Trace.Compact;

namespace Replayvisor.Engine.Trace;

/// <summary>Decodes the events of an events chunk: a MessagePack array (kind Events) or the compact columns (kind CompactEvents).</summary>
internal static class EventChunkDecoder
{
    /// <summary>Whether a chunk of <paramref name="kind"/> holds events in a trace of format <paramref name="version"/>.</summary>
    public static bool HoldsEvents(ChunkKind kind, int version) =>
        kind == ChunkKind.Events || (kind == ChunkKind.CompactEvents && version >= TraceLayout.CompactEventsVersion);

    /// <summary>
    /// The events of an events chunk: a <see cref="ChunkEvents"/> for compact events (hypercalls
    /// and upcalls left in columns), an array for a MessagePack chunk. Damage is <see cref="TraceFormatException"/>.
    /// </summary>
    /// <param name="raw">The payload.</param>
    /// <param name="offset">The chunk's offset, for errors.</param>
    /// <param name="kind">The chunk's kind.</param>
    /// <param name="countOnly">A compact chunk is checked in full but keeps only its inputs and instruction counts (ChunkEvents.InputCount).</param>
    public static IReadOnlyList<TraceEvent> Decode(byte[] raw, long offset, ChunkKind kind = ChunkKind.Events, bool countOnly = false)
    {
        if (kind == ChunkKind.CompactEvents)
        {
            ChunkEvents columns;
            try
            {
                columns = CompactEventDecoder.DecodeColumns(raw, countOnly);
            }
            catch (CompactFormatException ex)
            {
                throw ChunkHeader.Damaged(offset, $"compact events do not decode: {ex.Message}", ex);
            }
            // Icounts never fall (unsigned differences), and the events left in columns have no nil fields.
            foreach (var (index, e) in columns.DecodedObjects())
                if (!IsWellFormed(e))
                    throw ChunkHeader.Damaged(offset, $"event {index} has a nil field");
            return columns;
        }
        TraceEvent[]? events;
        int bytesRead;
        try
        {
            events = MessagePackSerializer.Deserialize<TraceEvent[]>(raw, TraceMessagePack.Options, out bytesRead);
        }
        catch (MessagePackSerializationException ex)
        {
            throw ChunkHeader.Damaged(offset, $"events do not decode: {ex.InnerException?.Message ?? ex.Message}", ex);
        }
        if (events is null || bytesRead != raw.Length)
            throw ChunkHeader.Damaged(offset, "the payload is not exactly one array of events");
        for (var i = 0; i < events.Length; i++)
        {
            if (events[i] is null)
                throw ChunkHeader.Damaged(offset, $"event {i} is nil or of an unknown kind");
            if (!IsWellFormed(events[i]))
                throw ChunkHeader.Damaged(offset, $"event {i} has a nil field");
            if (i > 0 && events[i].Icount < events[i - 1].Icount)
                throw ChunkHeader.Damaged(offset, $"event {i} goes back in icount");
        }
        return events;
    }

    /// <summary>Nil where the schema has a non-nullable string or record is damage, not an event.</summary>
    private static bool IsWellFormed(TraceEvent e) => e switch
    {
        HypercallEvent h => NoNils(h.Multicall) && NoNils(h.Memory),
        FailsafeEvent f => f.Cause is not null,
        ShutdownEvent s => s.Detail is not null,
        _ => true,
    };

    private static bool NoNils<T>(EquatableArray<T> items) where T : class, IEquatable<T>
    {
        foreach (var item in items.AsSpan())
            if (item is null)
                return false;
        return true;
    }

    public static TraceChunkInfo Describe(long offset, in ChunkHeader header, IReadOnlyList<TraceEvent> events)
    {
        if (events.Count == 0)
            throw ChunkHeader.Damaged(offset, "an events chunk with no events");
        var (first, last) = events is ChunkEvents c ? (c.IcountAt(0), c.IcountAt(c.Count - 1)) : (events[0].Icount, events[^1].Icount);
        return new(offset, header.StoredLength, header.RawLength, first, last, events.Count);
    }
}
