using System.Buffers.Binary;
using K4os.Compression.LZ4;

namespace Replayvisor.Engine.Trace;

/// <summary>The 16-byte header in front of every chunk payload (all fields little-endian).</summary>
internal readonly record struct ChunkHeader(ChunkKind Kind, ChunkFlags Flags, int StoredLength, int RawLength, uint Crc)
{
    public void WriteTo(Span<byte> target)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(target, (uint)Kind | ((uint)Flags << 16));
        BinaryPrimitives.WriteUInt32LittleEndian(target[4..], (uint)StoredLength);
        BinaryPrimitives.WriteUInt32LittleEndian(target[8..], (uint)RawLength);
        BinaryPrimitives.WriteUInt32LittleEndian(target[12..], Crc);
    }

    /// <summary>
    /// An LZ4 block expands at most 255-fold (a match length grows by 255 per extra byte), so a raw
    /// length beyond that is a lie; refusing it keeps a damaged header from allocating a gigabyte.
    /// </summary>
    public const uint MaxLz4Ratio = 255;

    public static ChunkHeader Parse(ReadOnlySpan<byte> source, long offset)
    {
        var kindFlags = BinaryPrimitives.ReadUInt32LittleEndian(source);
        var stored = BinaryPrimitives.ReadUInt32LittleEndian(source[4..]);
        var raw = BinaryPrimitives.ReadUInt32LittleEndian(source[8..]);
        var kind = (ChunkKind)(kindFlags & 0xFFFF);
        var flags = (ChunkFlags)(kindFlags >> 16);
        if (!Enum.IsDefined(kind) || (flags & ~ChunkFlags.Lz4) != 0)
            throw Damaged(offset, $"unknown chunk kind/flags 0x{kindFlags:x8}");
        if (stored > TraceLayout.MaxPayload || raw > TraceLayout.MaxPayload
            || (flags == ChunkFlags.None && stored != raw)
            || (flags == ChunkFlags.Lz4 && raw > (ulong)stored * MaxLz4Ratio))
            throw Damaged(offset, $"implausible chunk lengths (stored {stored}, raw {raw})");
        return new ChunkHeader(kind, flags, (int)stored, (int)raw, BinaryPrimitives.ReadUInt32LittleEndian(source[12..]));
    }

    public static TraceFormatException Damaged(long offset, string why, Exception? inner = null)
        => new(TraceError.DamagedChunk, offset, $"damaged chunk: {why}", inner);
}

/// <summary>Turns payloads into chunks (compress, checksum) and back (verify, decompress).</summary>
internal static class ChunkCodec
{
    /// <summary>The whole chunk, header and stored payload. LZ4 is used only when it saves space.</summary>
    public static byte[] Encode(ChunkKind kind, ReadOnlySpan<byte> raw)
    {
        var chunk = new byte[TraceLayout.ChunkHeaderSize + LZ4Codec.MaximumOutputSize(raw.Length)];
        var payload = chunk.AsSpan(TraceLayout.ChunkHeaderSize);
        var compressed = raw.Length == 0 ? -1 : LZ4Codec.Encode(raw, payload, LZ4Level.L00_FAST);
        var flags = ChunkFlags.Lz4;
        if (compressed <= 0 || compressed >= raw.Length)
        {
            raw.CopyTo(payload);
            compressed = raw.Length;
            flags = ChunkFlags.None;
        }
        var stored = payload[..compressed];
        new ChunkHeader(kind, flags, compressed, raw.Length, Crc32C.Compute(stored)).WriteTo(chunk);
        Array.Resize(ref chunk, TraceLayout.ChunkHeaderSize + compressed);
        return chunk;
    }

    /// <summary>Verifies the checksum and returns the raw payload.</summary>
    public static byte[] Decode(in ChunkHeader header, ReadOnlySpan<byte> stored, long offset)
    {
        if (Crc32C.Compute(stored) != header.Crc)
            throw ChunkHeader.Damaged(offset, "CRC-32C mismatch");
        if (header.Flags == ChunkFlags.None)
            return stored.ToArray();
        var raw = new byte[header.RawLength];
        if (LZ4Codec.Decode(stored, raw) != raw.Length)
            throw ChunkHeader.Damaged(offset, "LZ4 payload does not decompress to its recorded length");
        return raw;
    }
}
