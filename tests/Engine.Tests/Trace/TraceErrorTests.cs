using System.Buffers.Binary;
using MessagePack;
using Replayvisor.Engine.Trace;
using Xunit;

namespace Replayvisor.Engine.Tests.Trace;

/// <summary>Files that are not readable traces each give their own <see cref="TraceError"/>.</summary>
public sealed class TraceErrorTests
{
    private static TraceFormatException OpenFails(byte[] bytes)
    {
        var ex = Assert.Throws<TraceFormatException>(() => TraceSamples.Open(bytes));
        Assert.DoesNotContain('\n', ex.Message);
        return ex;
    }

    [Fact]
    public void Empty_file() => Assert.Equal(TraceError.Empty, OpenFails([]).Error);

    [Fact]
    public void Not_a_trace()
    {
        Assert.Equal(TraceError.NotATrace, OpenFails("#!/bin/sh\necho hello\n"u8.ToArray()).Error);
        Assert.Equal(TraceError.NotATrace, OpenFails([0x7f]).Error);
    }

    [Fact]
    public void Newer_format_version()
    {
        var bytes = TraceSamples.Write(TraceSamples.OneOfEach());
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(8), TraceLayout.FormatVersion + 1);

        var ex = OpenFails(bytes);
        Assert.Equal(TraceError.NewerFormat, ex.Error);
        Assert.Equal(TraceLayout.FormatVersion + 1, ex.FormatVersion);
        Assert.Contains($"version {TraceLayout.FormatVersion + 1}", ex.Message);
    }

    [Fact]
    public void Truncated_before_the_events()
    {
        var bytes = TraceSamples.Write(TraceSamples.OneOfEach());

        Assert.Equal(TraceError.Truncated, OpenFails(bytes[..5]).Error);
        Assert.Equal(TraceError.Truncated, OpenFails(bytes[..30]).Error);
        Assert.Equal(TraceError.Truncated, OpenFails(bytes[..(ImageOffset(bytes) + 20)]).Error);
    }

    [Fact]
    public void Damaged_header()
    {
        var bytes = TraceSamples.Write(TraceSamples.OneOfEach());
        bytes[TraceLayout.PreambleSize + TraceLayout.ChunkHeaderSize + 4] ^= 0x20;

        var ex = OpenFails(bytes);
        Assert.Equal(TraceError.BadHeader, ex.Error);
        Assert.Equal(TraceLayout.PreambleSize, ex.Offset);
    }

    [Fact]
    public void Header_that_does_not_decode()
    {
        var bytes = Concat(Preamble(), ChunkCodec.Encode(ChunkKind.Header, [0xc1], Crc32C.Compute(Preamble())));

        Assert.Equal(TraceError.BadHeader, OpenFails(bytes).Error);
    }

    [Fact]
    public void Guest_image_that_does_not_match_its_hash()
    {
        var header = MessagePackSerializer.Serialize(TraceSamples.Header(), TraceMessagePack.Options);
        var headerChunk = ChunkCodec.Encode(ChunkKind.Header, header, Crc32C.Compute(Preamble()), out var h);
        var bytes = Concat(Preamble(), headerChunk, ChunkCodec.Encode(ChunkKind.GuestImage, [1, 2, 3], h.Chain));

        var ex = OpenFails(bytes);
        Assert.Equal(TraceError.ImageMismatch, ex.Error);
    }

    [Fact]
    public void Damaged_guest_image()
    {
        var bytes = TraceSamples.Write(TraceSamples.OneOfEach());
        var imageOffset = ImageOffset(bytes);
        bytes[imageOffset + TraceLayout.ChunkHeaderSize + 7] ^= 0x08;

        var ex = OpenFails(bytes);
        Assert.Equal(TraceError.DamagedChunk, ex.Error);
        Assert.Equal(imageOffset, ex.Offset);
    }

    [Fact]
    public void Crc32C_matches_the_standard_check_value()
    {
        Assert.Equal(0xE3069283u, Crc32C.Compute("123456789"u8));
        Assert.Equal(0u, Crc32C.Compute([]));
    }

    /// <summary>The guest image chunk follows the header chunk.</summary>
    private static int ImageOffset(byte[] trace) => TraceLayout.PreambleSize + TraceLayout.ChunkHeaderSize
        + BinaryPrimitives.ReadInt32LittleEndian(trace.AsSpan(TraceLayout.PreambleSize + 4));

    private static byte[] Preamble()
    {
        var preamble = new byte[TraceLayout.PreambleSize];
        TraceLayout.Magic.CopyTo(preamble);
        BinaryPrimitives.WriteUInt16LittleEndian(preamble.AsSpan(8), TraceLayout.FormatVersion);
        return preamble;
    }

    private static byte[] Concat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();
}
