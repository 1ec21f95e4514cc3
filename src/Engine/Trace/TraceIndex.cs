using MessagePack;

namespace Replayvisor.Engine.Trace;

/// <summary>
/// One event chunk as listed by the index: its offset from the start of the trace, its stored
/// (compressed) and raw payload lengths, and the icount range and number of its events.
/// </summary>
[MessagePackObject]
public sealed record TraceChunkInfo(
    [property: Key(0)] long Offset,
    [property: Key(1)] int StoredLength,
    [property: Key(2)] int RawLength,
    [property: Key(3)] ulong FirstIcount,
    [property: Key(4)] ulong LastIcount,
    [property: Key(5)] int EventCount);

/// <summary>Totals over a trace's event chunks.</summary>
public sealed record TraceStats(int ChunkCount, long EventCount, long CompressedBytes, long UncompressedBytes)
{
    internal static TraceStats Of(IReadOnlyList<TraceChunkInfo> chunks) => new(
        chunks.Count, chunks.Sum(c => (long)c.EventCount), chunks.Sum(c => (long)c.StoredLength), chunks.Sum(c => (long)c.RawLength));
}

/// <summary>The index chunk's payload.</summary>
[MessagePackObject]
internal sealed record TraceIndexPayload(
    [property: Key(0)] EquatableArray<TraceChunkInfo> Chunks,
    [property: Key(1)] TraceSummary Summary);
