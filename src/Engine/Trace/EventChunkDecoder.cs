using MessagePack;

namespace Replayvisor.Engine.Trace;

/// <summary>Decodes the MessagePack array of events in an events chunk.</summary>
internal static class EventChunkDecoder
{
    public static TraceEvent[] Decode(byte[] raw, long offset)
    {
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
            if (i > 0 && events[i].Icount < events[i - 1].Icount)
                throw ChunkHeader.Damaged(offset, $"event {i} goes back in icount");
        }
        return events;
    }

    public static TraceChunkInfo Describe(long offset, in ChunkHeader header, TraceEvent[] events)
    {
        if (events.Length == 0)
            throw ChunkHeader.Damaged(offset, "an events chunk with no events");
        return new(offset, header.StoredLength, header.RawLength, events[0].Icount, events[^1].Icount, events.Length);
    }
}
