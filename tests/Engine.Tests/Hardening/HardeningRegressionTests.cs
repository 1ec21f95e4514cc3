using System.Buffers.Binary;
using MessagePack;
using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Tests.Boot;
using Replayvisor.Engine.Tests.Trace;
using Replayvisor.Engine.Trace;

namespace Replayvisor.Engine.Tests.Hardening;

/// <summary>One pinned case for each bug the fuzzers found, so it stays fixed whatever the seeds.</summary>
public sealed class HardeningRegressionTests
{
    [Theory]
    [InlineData(XenNoteType.Loader, "gen\neric")]
    [InlineData(XenNoteType.XenVersion, "xen-2.0\r\n")]
    [InlineData(XenNoteType.PaeMode, "yes\u001b[2J")]
    [InlineData(XenNoteType.Features, "!bogus\nfeature")]
    public void A_note_string_with_control_characters_gives_a_one_line_refusal(XenNoteType type, string value)
    {
        var e = TestElf.Linux(pae: false);
        e.Notes.RemoveAll(n => n.Type == (uint)type || (type == XenNoteType.Loader && n.Type == (uint)XenNoteType.GuestOs));
        e.Note(type, value);

        var ex = Assert.Throws<BootImageException>(() => XenGuestInfo.Parse(e.Build()));
        Assert.Null(Fuzz.CheckMessage(ex.Message));
        Assert.Contains("\\", ex.Message, StringComparison.Ordinal); // escaped, not dropped
    }

    [Fact]
    public void A_long_hostile_legacy_value_is_cut_in_the_message()
    {
        var e = TestElf.Kernel(paddr: 0xC0100000, virtOffset: 0)
            .Legacy("GUEST_OS=linux,XEN_VER=xen-3.0,LOADER=generic,VIRT_BASE=0x" + new string('Z', 5000) + "\n");

        var ex = Assert.Throws<BootImageException>(() => XenGuestInfo.Parse(e.Build()));
        Assert.Equal(BootError.BadNoteValue, ex.Error);
        Assert.Null(Fuzz.CheckMessage(ex.Message));
        Assert.True(ex.Message.Length < 200, ex.Message);
    }

    [Fact]
    public void An_lz4_chunk_claiming_a_gigabyte_is_refused_without_allocating_it()
    {
        var seed = TraceSeed.All[0];
        int events = seed.Chunks.FindIndex(c => c.HoldsEvents);
        var bytes = seed.WithChunk(events, TraceFuzzTests.RawChunkBytes(ChunkKind.Events, [0x10, 0x41], ChunkFlags.Lz4, TraceLayout.MaxPayload));

        long before = GC.GetAllocatedBytesForCurrentThread();
        using var reader = TraceSamples.Open(bytes);
        var ex = Assert.Throws<TraceFormatException>(() => reader.ReadEvents().ToList());
        Assert.Equal(TraceError.DamagedChunk, ex.Error);
        Assert.Equal(seed.Chunks[events].Offset, ex.Offset);
        Assert.Contains("implausible chunk lengths", ex.Message, StringComparison.Ordinal);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 16 << 20);
    }

    [Fact]
    public void An_indexed_chunk_whose_length_runs_past_the_end_is_damaged_not_truncated()
    {
        var seed = TraceSeed.All[0];
        var chunk = seed.Chunks.First(c => c.HoldsEvents);
        var bytes = Mutate.Put32(seed.Bytes, chunk.Offset + 4, 0x7FFF);

        using var reader = TraceSamples.Open(bytes);
        Assert.True(reader.Complete);
        var ex = Assert.Throws<TraceFormatException>(() => reader.ReadEvents().ToList());
        Assert.Equal(TraceError.DamagedChunk, ex.Error);
        Assert.Equal(chunk.Offset, ex.Offset);
    }

    [Fact]
    public void A_header_hash_with_a_newline_is_a_bad_header_in_one_line()
    {
        var header = new TraceHeader("b", "358b\n" + new string('0', 59), "img", "k", null);
        byte[] bytes = [.. Preamble(), .. ChunkCodec.Encode(ChunkKind.Header, MessagePackSerializer.Serialize(header, TraceMessagePack.Options)),
            .. ChunkCodec.Encode(ChunkKind.GuestImage, [1, 2, 3])];

        var ex = Assert.Throws<TraceFormatException>(() => TraceSamples.Open(bytes));
        Assert.Equal(TraceError.BadHeader, ex.Error);
        Assert.Null(Fuzz.CheckMessage(ex.Message));
    }

    [Fact]
    public void Trace_error_messages_from_file_text_are_escaped()
    {
        var ex = new TraceFormatException(TraceError.DamagedChunk, 42, "bad\nthing\u0007" + new string('x', 2000));
        Assert.Null(Fuzz.CheckMessage(ex.Message));
        Assert.EndsWith("(at byte offset 42)", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_failsafe_event_with_a_nil_cause_is_a_damaged_chunk()
    {
        // [[7, [5, 1, nil]]]: union key 7 (FailsafeEvent), icount 5, eip 1, cause nil.
        byte[] payload = [0x91, 0x92, 0x07, 0x93, 0x05, 0x01, 0xC0];
        var seed = TraceSeed.All[0];
        int events = seed.Chunks.FindIndex(c => c.HoldsEvents);

        using var reader = TraceSamples.Open(seed.WithChunk(events, ChunkCodec.Encode(ChunkKind.Events, payload)));
        var ex = Assert.Throws<TraceFormatException>(() => reader.ReadEvents().ToList());
        Assert.Equal(TraceError.DamagedChunk, ex.Error);
        Assert.Contains("nil field", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_index_entry_with_a_negative_raw_length_is_not_trusted()
    {
        var seed = TraceSeed.All[0];
        var index = MessagePackSerializer.Deserialize<TraceIndexPayload>(seed.Chunks[^1].Raw(), TraceMessagePack.Options);
        var chunks = index.Chunks.ToArray();
        chunks[0] = chunks[0] with { RawLength = -5 };
        var lying = ChunkCodec.Encode(ChunkKind.Index,
            MessagePackSerializer.Serialize(index with { Chunks = chunks }, TraceMessagePack.Options));

        using var reader = TraceSamples.Open(seed.WithChunk(seed.Chunks.Count - 1, lying));
        Assert.False(reader.Complete); // the index is refused; the events are found by scanning
        Assert.True(reader.Stats.UncompressedBytes > 0);
        Assert.Equal(index.Chunks.Count, reader.Index.Count);
    }

    private static byte[] Preamble()
    {
        var p = new byte[TraceLayout.PreambleSize];
        TraceLayout.Magic.CopyTo(p);
        BinaryPrimitives.WriteUInt16LittleEndian(p.AsSpan(8), TraceLayout.FormatVersion);
        return p;
    }
}
