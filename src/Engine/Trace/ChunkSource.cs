using System.Buffers.Binary;

namespace Replayvisor.Engine.Trace;

/// <summary>Reads whole chunks out of a seekable stream by offset from the start of the trace.</summary>
internal sealed class ChunkSource(Stream stream, long origin)
{
    public long Length { get; } = stream.Length - origin;

    /// <summary>The trace's format version (set once the preamble is read); it fixes the chunk header layout.</summary>
    public int Version { get; set; } = TraceLayout.FormatVersion;

    /// <summary>The chain value the first chunk continues: the CRC-32C of the preamble (set with <see cref="Version"/>).</summary>
    public uint PreambleChain { get; set; }

    public int HeaderSize => TraceLayout.ChunkHeaderSizeOf(Version);

    /// <summary>
    /// Reads <paramref name="count"/> bytes at <paramref name="offset"/>, or null if the trace ends first.
    /// Safe to call from several threads (one read at a time: a replay decodes chunks ahead on other threads).
    /// </summary>
    public byte[]? TryReadBytes(long offset, int count)
    {
        if (offset < 0 || offset > Length - count)
            return null;
        var bytes = new byte[count];
        try
        {
            lock (stream)
            {
                stream.Position = origin + offset;
                stream.ReadExactly(bytes);
            }
        }
        catch (EndOfStreamException ex)
        {
            // The file was longer when it was opened: another process truncated or rewrote it.
            throw new TraceFormatException(TraceError.DamagedChunk, offset,
                $"the trace file became shorter while it was being read (was it overwritten?)", ex);
        }
        return bytes;
    }

    /// <summary>
    /// Reads, verifies and decompresses the chunk at <paramref name="offset"/>. Throws
    /// <see cref="TraceError.Truncated"/> if the trace ends inside it and
    /// <see cref="TraceError.DamagedChunk"/> if it fails its checks.
    /// </summary>
    public (ChunkHeader Header, byte[] Raw) Read(long offset, uint? previousChain)
    {
        var header = ReadHeader(offset, previousChain);
        return (header, ReadPayload(offset, header));
    }

    /// <summary>Reads and checks the header of the chunk at <paramref name="offset"/> (its chain continues <paramref name="previousChain"/>).</summary>
    public ChunkHeader ReadHeader(long offset, uint? previousChain) =>
        ChunkHeader.Parse(TryReadBytes(offset, HeaderSize) ?? throw Truncated(offset), offset, previousChain, Version);

    /// <summary>Checks that the chunk at <paramref name="offset"/> continues the chain value <paramref name="previousChain"/> (version 2 and later).</summary>
    public void CheckChain(long offset, uint previousChain)
    {
        if (Version >= 2)
            ChunkHeader.CheckChain(TryReadBytes(offset, HeaderSize) ?? throw Truncated(offset), offset, previousChain);
    }

    /// <summary>The chain value stored in the header of the chunk at <paramref name="offset"/> (0 for version 1), unchecked.</summary>
    public uint ChainAt(long offset)
    {
        if (Version < 2)
            return 0;
        var bytes = TryReadBytes(offset + ChunkHeader.ChainedBytes, 4) ?? throw Truncated(offset);
        return BinaryPrimitives.ReadUInt32LittleEndian(bytes);
    }

    /// <summary>Reads, verifies and decompresses the payload of the chunk at <paramref name="offset"/>.</summary>
    public byte[] ReadPayload(long offset, in ChunkHeader header)
    {
        var stored = TryReadBytes(offset + HeaderSize, header.StoredLength) ?? throw Truncated(offset);
        return ChunkCodec.Decode(header, stored, offset);
    }

    /// <summary>The offset just past the chunk at <paramref name="offset"/>.</summary>
    public long End(long offset, in ChunkHeader header) => offset + HeaderSize + header.StoredLength;

    private TraceFormatException Truncated(long offset) =>
        new(TraceError.Truncated, offset, $"the trace ends inside the chunk that starts here (trace length {Length})");
}
