using System.Buffers.Binary;
using MessagePack;
using Replayvisor.Engine.Tests.Trace;
using Replayvisor.Engine.Trace;

namespace Replayvisor.Engine.Tests.Hardening;

/// <summary>One chunk of a trace as it lies in the file.</summary>
internal sealed record RawChunk(ChunkKind Kind, int Offset, byte[] Bytes)
{
    public int StoredLength => Bytes.Length - TraceLayout.ChunkHeaderSize;
    public int End => Offset + Bytes.Length;
    /// <summary>An events chunk of either encoding (MessagePack, or compact in format 3).</summary>
    public bool HoldsEvents => Kind is ChunkKind.Events or ChunkKind.CompactEvents;
    public byte[] Raw() => ChunkCodec.Decode(ChunkHeader.Parse(Bytes, Offset, previousChain: null), Bytes.AsSpan(TraceLayout.ChunkHeaderSize), Offset);
}

/// <summary>Real traces written by <see cref="TraceWriter"/>, taken apart into chunks and put back together.</summary>
internal sealed class TraceSeed
{
    public required string Name { get; init; }
    public required byte[] Bytes { get; init; }
    public required List<RawChunk> Chunks { get; init; }
    public bool Complete => Chunks.Count > 0 && Chunks[^1].Kind == ChunkKind.Index;

    public static IReadOnlyList<TraceSeed> All { get; } = Make();

    private static List<TraceSeed> Make()
    {
        var events = TraceSamples.OneOfEach()
            .Concat(TraceSamples.Many(60).Select(e => e with { Icount = e.Icount + 6000 })).ToList();
        var small = new TraceWriterOptions { MaxChunkEvents = 9 };
        return
        [
            Parse("complete", TraceSamples.Write(events, complete: true, options: small)),
            Parse("incomplete", TraceSamples.Write(events, complete: false, options: small)),
            Parse("one-big-chunk", TraceSamples.Write(events.Concat(TraceSamples.Many(200).Select(e => e with { Icount = e.Icount + 20000 })))),
            Parse("no-events", TraceSamples.Write([], complete: true)),
        ];
    }

    public static TraceSeed Parse(string name, byte[] bytes)
    {
        var chunks = new List<RawChunk>();
        int offset = TraceLayout.PreambleSize;
        while (offset + TraceLayout.ChunkHeaderSize <= bytes.Length)
        {
            var header = ChunkHeader.Parse(bytes.AsSpan(offset, TraceLayout.ChunkHeaderSize), offset, previousChain: null);
            int end = offset + TraceLayout.ChunkHeaderSize + header.StoredLength;
            chunks.Add(new RawChunk(header.Kind, offset, bytes[offset..end]));
            offset = end;
            if (header.Kind == ChunkKind.Index) break;
        }
        return new TraceSeed { Name = name, Bytes = bytes, Chunks = chunks };
    }

    /// <summary>Named byte ranges: magic, version, each chunk's header fields and payload, footer.</summary>
    public List<(string Name, int Offset, int Length)> Regions()
    {
        var r = new List<(string, int, int)> { ("magic", 0, 8), ("version", 8, 2) };
        for (int i = 0; i < Chunks.Count; i++)
        {
            var c = Chunks[i];
            r.Add(($"chunk{i}({c.Kind}).kind", c.Offset, 4));
            r.Add(($"chunk{i}({c.Kind}).stored", c.Offset + 4, 4));
            r.Add(($"chunk{i}({c.Kind}).raw", c.Offset + 8, 4));
            r.Add(($"chunk{i}({c.Kind}).crc", c.Offset + 12, 4));
            r.Add(($"chunk{i}({c.Kind}).chain", c.Offset + 16, 4));
            r.Add(($"chunk{i}({c.Kind}).payload", c.Offset + TraceLayout.ChunkHeaderSize, c.StoredLength));
        }
        if (Complete) r.Add(("footer", Bytes.Length - TraceLayout.FooterSize, TraceLayout.FooterSize));
        return r;
    }

    /// <summary>
    /// The trace with chunk <paramref name="index"/> replaced by <paramref name="chunk"/> (whole encoded
    /// chunk bytes): later chunks move, and a complete trace gets a new index and footer that agree,
    /// so the replaced chunk itself is what the reader has to judge (the header chain is recomputed too).
    /// </summary>
    public byte[] WithChunk(int index, byte[] chunk) => Rechain(Reassemble(index, chunk));

    /// <summary>Recomputes every chunk's chain field (docs/trace-format.md "Chunks"), as a forger would.</summary>
    public static byte[] Rechain(byte[] trace)
    {
        var b = (byte[])trace.Clone();
        uint chain = Crc32C.Compute(b.AsSpan(0, TraceLayout.PreambleSize));
        long offset = TraceLayout.PreambleSize;
        while (offset + TraceLayout.ChunkHeaderSize <= b.Length)
        {
            var h = b.AsSpan((int)offset, TraceLayout.ChunkHeaderSize);
            chain = Crc32C.Append(chain, h[..ChunkHeader.ChainedBytes]);
            BinaryPrimitives.WriteUInt32LittleEndian(h[ChunkHeader.ChainedBytes..], chain);
            if ((BinaryPrimitives.ReadUInt32LittleEndian(h) & 0xFFFF) == (uint)ChunkKind.Index) break;
            offset += TraceLayout.ChunkHeaderSize + (long)BinaryPrimitives.ReadUInt32LittleEndian(h[4..]);
        }
        return b;
    }

    private byte[] Reassemble(int index, byte[] chunk)
    {
        var parts = new List<byte[]> { Bytes[..TraceLayout.PreambleSize] };
        var infos = new List<TraceChunkInfo>();
        long pos = TraceLayout.PreambleSize;
        TraceIndexPayload? original = Complete
            ? MessagePackSerializer.Deserialize<TraceIndexPayload>(Chunks[^1].Raw(), TraceMessagePack.Options) : null;
        int eventIndex = 0;
        for (int i = 0; i < Chunks.Count; i++)
        {
            var c = Chunks[i];
            if (c.Kind == ChunkKind.Index && i != index)
            {
                var payload = new TraceIndexPayload(infos.ToArray(), original!.Summary);
                var bytes = ChunkCodec.Encode(ChunkKind.Index, MessagePackSerializer.Serialize(payload, TraceMessagePack.Options));
                parts.Add(bytes);
                parts.Add(Footer(pos));
                return Concat(parts);
            }
            var b = i == index ? chunk : c.Bytes;
            if (c.HoldsEvents)
            {
                var h = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(8));
                var was = original?.Chunks[eventIndex] ?? new TraceChunkInfo(0, 0, 0, 0, 0, 1);
                infos.Add(was with { Offset = pos, StoredLength = b.Length - TraceLayout.ChunkHeaderSize, RawLength = (int)Math.Min(h, int.MaxValue) });
                eventIndex++;
            }
            parts.Add(b);
            pos += b.Length;
            if (i == index && c.Kind == ChunkKind.Index)
            {
                parts.Add(Footer(pos - b.Length));
                return Concat(parts);
            }
        }
        return Concat(parts);
    }

    private static byte[] Footer(long indexOffset)
    {
        var f = new byte[TraceLayout.FooterSize];
        BinaryPrimitives.WriteInt64LittleEndian(f, indexOffset);
        TraceLayout.EndMagic.CopyTo(f.AsSpan(8));
        return f;
    }

    private static byte[] Concat(List<byte[]> parts) => parts.SelectMany(p => p).ToArray();
}
