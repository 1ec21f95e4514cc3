using System.Buffers.Binary;
using K4os.Compression.LZ4;

namespace Replayvisor.Engine.Trace;

/// <summary>
/// The header in front of every chunk payload (all fields little-endian; docs/trace-format.md
/// "Chunks"). Version 2 adds <see cref="Chain"/>: the CRC-32C of the preamble and of the first 16
/// bytes of every chunk header up to and including this one, so a changed length, kind or payload
/// checksum, and a chunk moved, removed or duplicated, are all caught at the chunk header.
/// </summary>
internal readonly record struct ChunkHeader(ChunkKind Kind, ChunkFlags Flags, int StoredLength, int RawLength, uint Crc, uint Chain = 0)
{
    /// <summary>The bytes the chain checksum covers: kind/flags, lengths and payload CRC.</summary>
    public const int ChainedBytes = 16;

    /// <summary>Writes the header in the current format, computing <see cref="Chain"/> from <paramref name="previousChain"/>.</summary>
    public ChunkHeader WriteTo(Span<byte> target, uint previousChain)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(target, (uint)Kind | ((uint)Flags << 16));
        BinaryPrimitives.WriteUInt32LittleEndian(target[4..], (uint)StoredLength);
        BinaryPrimitives.WriteUInt32LittleEndian(target[8..], (uint)RawLength);
        BinaryPrimitives.WriteUInt32LittleEndian(target[12..], Crc);
        var chain = Crc32C.Append(previousChain, target[..ChainedBytes]);
        BinaryPrimitives.WriteUInt32LittleEndian(target[ChainedBytes..], chain);
        return this with { Chain = chain };
    }

    /// <summary>
    /// An LZ4 block expands at most 255-fold (a match length grows by 255 per extra byte), so a raw
    /// length beyond that is a lie; refusing it keeps a damaged header from allocating a gigabyte.
    /// </summary>
    public const uint MaxLz4Ratio = 255;

    /// <summary>
    /// Parses and checks a chunk header of format <paramref name="version"/>. For version 2 and
    /// later, <paramref name="previousChain"/> is the chain value of the chunk before (the CRC-32C
    /// of the preamble for the first chunk); null when the caller checks the chain itself later
    /// (<see cref="CheckChain"/>).
    /// </summary>
    public static ChunkHeader Parse(ReadOnlySpan<byte> source, long offset, uint? previousChain, int version = TraceLayout.FormatVersion)
    {
        uint chain = 0;
        if (version >= 2)
        {
            chain = BinaryPrimitives.ReadUInt32LittleEndian(source[ChainedBytes..]);
            if (previousChain is { } previous)
                CheckChain(source, offset, previous);
        }
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
        return new ChunkHeader(kind, flags, (int)stored, (int)raw, BinaryPrimitives.ReadUInt32LittleEndian(source[12..]), chain);
    }

    /// <summary>Checks the chain field of the (version 2) header in <paramref name="source"/>.</summary>
    public static void CheckChain(ReadOnlySpan<byte> source, long offset, uint previousChain)
    {
        if (Crc32C.Append(previousChain, source[..ChainedBytes]) != BinaryPrimitives.ReadUInt32LittleEndian(source[ChainedBytes..]))
            throw Damaged(offset, "the chunk header checksum does not match (a header field was changed, or a chunk before it was changed, moved, removed or duplicated)");
    }

    public static TraceFormatException Damaged(long offset, string why, Exception? inner = null)
        => new(TraceError.DamagedChunk, offset, $"damaged chunk: {why}", inner);
}

/// <summary>Turns payloads into chunks (compress, checksum) and back (verify, decompress).</summary>
internal static class ChunkCodec
{
    /// <summary>
    /// The whole chunk in the current format, header and stored payload, chained to
    /// <paramref name="previousChain"/>. LZ4 is used only when it saves space.
    /// </summary>
    public static byte[] Encode(ChunkKind kind, ReadOnlySpan<byte> raw, uint previousChain = 0) => Encode(kind, raw, previousChain, out _);

    public static byte[] Encode(ChunkKind kind, ReadOnlySpan<byte> raw, uint previousChain, out ChunkHeader header)
    {
        byte[] chunk = [];
        int length = Encode(kind, raw, previousChain, ref chunk, out header);
        Array.Resize(ref chunk, length);
        return chunk;
    }

    /// <summary>
    /// The same chunk, in the first bytes of <paramref name="chunk"/> (replaced by a larger array when
    /// too small for the worst case): its length. A trace writer passes the same buffer for every chunk.
    /// </summary>
    public static int Encode(ChunkKind kind, ReadOnlySpan<byte> raw, uint previousChain, ref byte[] chunk, out ChunkHeader header)
    {
        const int headerSize = TraceLayout.ChunkHeaderSize;
        int worst = headerSize + LZ4Codec.MaximumOutputSize(raw.Length);
        if (chunk.Length < worst) chunk = new byte[worst];
        var payload = chunk.AsSpan(headerSize, worst - headerSize);
        var compressed = raw.Length == 0 ? -1 : LZ4Codec.Encode(raw, payload, LZ4Level.L00_FAST);
        var flags = ChunkFlags.Lz4;
        if (compressed <= 0 || compressed >= raw.Length)
        {
            raw.CopyTo(payload);
            compressed = raw.Length;
            flags = ChunkFlags.None;
        }
        var stored = payload[..compressed];
        header = new ChunkHeader(kind, flags, compressed, raw.Length, Crc32C.Compute(stored)).WriteTo(chunk, previousChain);
        return headerSize + compressed;
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
