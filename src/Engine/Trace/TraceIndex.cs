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

/// <summary>
/// One keyframe chunk as listed by the index (format 4): where it is, its stored and raw payload
/// lengths, the instruction count of the state it holds, the hash of that machine state, and the
/// layout of the payload (the engine's snapshot layout it was written with; a reader with another
/// layout cannot use it and seeks by replaying instead).
/// </summary>
[MessagePackObject]
public sealed record TraceKeyframeInfo(
    [property: Key(0)] long Offset,
    [property: Key(1)] int StoredLength,
    [property: Key(2)] int RawLength,
    [property: Key(3)] ulong Icount,
    [property: Key(4)] EquatableArray<byte> StateHash,
    [property: Key(5)] string Layout);

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

/// <summary>
/// The index chunk's payload as format 4 reads it: key 2 lists the keyframe chunks (absent in a
/// trace without keyframes, which the writer still writes as <see cref="TraceIndexPayload"/>, byte for byte as before).
/// </summary>
[MessagePackObject]
internal sealed record KeyframedIndexPayload(
    [property: Key(0)] EquatableArray<TraceChunkInfo> Chunks,
    [property: Key(1)] TraceSummary Summary,
    [property: Key(2)] EquatableArray<TraceKeyframeInfo> Keyframes = default);
