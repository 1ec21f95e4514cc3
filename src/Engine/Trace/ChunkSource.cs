namespace Replayvisor.Engine.Trace;

/// <summary>Reads whole chunks out of a seekable stream by offset from the start of the trace.</summary>
internal sealed class ChunkSource(Stream stream, long origin)
{
    public long Length { get; } = stream.Length - origin;

    /// <summary>Reads <paramref name="count"/> bytes at <paramref name="offset"/>, or null if the trace ends first.</summary>
    public byte[]? TryReadBytes(long offset, int count)
    {
        if (offset < 0 || offset > Length - count)
            return null;
        var bytes = new byte[count];
        stream.Position = origin + offset;
        stream.ReadExactly(bytes);
        return bytes;
    }

    /// <summary>
    /// Reads, verifies and decompresses the chunk at <paramref name="offset"/>. Throws
    /// <see cref="TraceError.Truncated"/> if the trace ends inside it and
    /// <see cref="TraceError.DamagedChunk"/> if it fails its checks.
    /// </summary>
    public (ChunkHeader Header, byte[] Raw) Read(long offset)
    {
        var header = ReadHeader(offset);
        return (header, ReadPayload(offset, header));
    }

    /// <summary>Reads and sanity-checks the header of the chunk at <paramref name="offset"/>.</summary>
    public ChunkHeader ReadHeader(long offset) =>
        ChunkHeader.Parse(TryReadBytes(offset, TraceLayout.ChunkHeaderSize) ?? throw Truncated(offset), offset);

    /// <summary>Reads, verifies and decompresses the payload of the chunk at <paramref name="offset"/>.</summary>
    public byte[] ReadPayload(long offset, in ChunkHeader header)
    {
        var stored = TryReadBytes(offset + TraceLayout.ChunkHeaderSize, header.StoredLength) ?? throw Truncated(offset);
        return ChunkCodec.Decode(header, stored, offset);
    }

    /// <summary>The offset just past the chunk at <paramref name="offset"/>.</summary>
    public static long End(long offset, in ChunkHeader header) => offset + TraceLayout.ChunkHeaderSize + header.StoredLength;

    private TraceFormatException Truncated(long offset) =>
        new(TraceError.Truncated, offset, $"the trace ends inside the chunk that starts here (trace length {Length})");
}
