using MessagePack;
using Replayvisor.Engine.Trace.Compact;

namespace Replayvisor.Engine.Trace;

/// <summary>Decodes the events of an events chunk: a MessagePack array (kind Events) or the compact columns (kind CompactEvents).</summary>
internal static class EventChunkDecoder
{
    /// <summary>Whether a chunk of <paramref name="kind"/> holds events in a trace of format <paramref name="version"/>.</summary>
    public static bool HoldsEvents(ChunkKind kind, int version) =>
        kind == ChunkKind.Events || (kind == ChunkKind.CompactEvents && version >= TraceLayout.CompactEventsVersion);

    public static TraceEvent[] Decode(byte[] raw, long offset, ChunkKind kind = ChunkKind.Events)
    {
        TraceEvent[]? events;
        if (kind == ChunkKind.CompactEvents)
        {
            try
            {
                events = CompactEventDecoder.Decode(raw);
            }
            catch (CompactFormatException ex)
            {
                throw ChunkHeader.Damaged(offset, $"compact events do not decode: {ex.Message}", ex);
            }
        }
        else
        {
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
        }
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

    public static TraceChunkInfo Describe(long offset, in ChunkHeader header, TraceEvent[] events)
    {
        if (events.Length == 0)
            throw ChunkHeader.Damaged(offset, "an events chunk with no events");
        return new(offset, header.StoredLength, header.RawLength, events[0].Icount, events[^1].Icount, events.Length);
    }
}
