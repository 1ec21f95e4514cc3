namespace Replayvisor.Engine.Trace;

/// <summary>The fixed parts of the .rvt layout (docs/trace-format.md).</summary>
internal static class TraceLayout
{
    /// <summary>Bumped on every incompatible change to the layout or the event schema (docs/trace-format.md "Versions"): the newest version this build reads and writes.</summary>
    public const ushort FormatVersion = 4;

    /// <summary>The first version whose events chunks may be compact (kind <see cref="ChunkKind.CompactEvents"/>).</summary>
    public const ushort CompactEventsVersion = 3;

    /// <summary>The first version that may hold keyframe chunks (kind <see cref="ChunkKind.Keyframe"/>).</summary>
    public const ushort KeyframesVersion = 4;

    /// <summary>
    /// What a trace without keyframes is written as: version 4 only adds keyframe chunks, so a
    /// trace that holds none stays readable by version-3 builds (docs/trace-format.md "Versions").
    /// </summary>
    public const ushort BaseFormatVersion = 3;

    /// <summary>The oldest format version this build still reads.</summary>
    public const ushort OldestReadableVersion = 1;

    /// <summary>"RVTRACE\0", at offset 0.</summary>
    public static ReadOnlySpan<byte> Magic => "RVTRACE\0"u8;
    /// <summary>"RVTEND\0\0", the last 8 bytes of a completed trace.</summary>
    public static ReadOnlySpan<byte> EndMagic => "RVTEND\0\0"u8;

    /// <summary>Magic (8) + u16 format version.</summary>
    public const int PreambleSize = 10;
    /// <summary>u32 kind/flags, u32 stored length, u32 raw length, u32 payload CRC-32C, u32 chain CRC-32C (version 2).</summary>
    public const int ChunkHeaderSize = 20;

    /// <summary>The chunk header size of a trace of format <paramref name="version"/> (version 1 had no chain field).</summary>
    public static int ChunkHeaderSizeOf(int version) => version >= 2 ? ChunkHeaderSize : 16;
    /// <summary>u64 index chunk offset + end magic (8).</summary>
    public const int FooterSize = 16;
    /// <summary>The largest payload a reader accepts, so a damaged length cannot ask for gigabytes.</summary>
    public const int MaxPayload = 1 << 30;
}

/// <summary>The low 16 bits of a chunk's kind/flags word.</summary>
internal enum ChunkKind : ushort
{
    /// <summary>The trace header (MessagePack).</summary>
    Header = 1,
    /// <summary>The guest kernel image.</summary>
    GuestImage = 2,
    /// <summary>A batch of events.</summary>
    Events = 3,
    /// <summary>The index and summary.</summary>
    Index = 4,
    /// <summary>A whole replay state at one instruction count (format 4; docs/trace-format.md "Keyframe chunks").</summary>
    Keyframe = 5,
    /// <summary>A batch of events in the compact columnar encoding (format 3; docs/trace-format.md "Compact events chunks").</summary>
    CompactEvents = 6,
}

/// <summary>The high 16 bits of a chunk's kind/flags word.</summary>
[Flags]
internal enum ChunkFlags : ushort
{
    /// <summary>The payload is stored raw.</summary>
    None = 0,
    /// <summary>The payload is an LZ4 block (K4os LZ4Codec); otherwise it is stored raw.</summary>
    Lz4 = 1,
}
