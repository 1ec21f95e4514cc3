using System.Buffers.Binary;
using MessagePack;
using Replayvisor.Engine.Trace;
using Xunit;

namespace Replayvisor.Engine.Tests.Trace;

/// <summary>Killed recorders, cut-short files and flipped bytes.</summary>
public sealed class TraceRecoveryTests
{
    private static readonly TraceWriterOptions TenPerChunk = new() { MaxChunkEvents = 10 };
    private static readonly List<TraceEvent> Events = TraceSamples.Many(35).ToList();

    /// <summary>The chunk offsets, which are the same whether or not the trace was completed.</summary>
    private static IReadOnlyList<TraceChunkInfo> Chunks()
    {
        using var reader = TraceSamples.Open(TraceSamples.Write(Events, options: TenPerChunk));
        return reader.Index;
    }

    [Fact]
    public void A_writer_disposed_without_complete_leaves_every_event_readable()
    {
        using var reader = TraceSamples.Open(TraceSamples.Write(Events, complete: false, options: TenPerChunk));

        Assert.False(reader.Complete);
        Assert.Contains("no footer", reader.IncompleteReason);
        Assert.Null(reader.Summary);
        Assert.Null(reader.Damage);
        Assert.Equal(Chunks(), reader.Index);
        Assert.Equal(Events, reader.ReadEvents());
    }

    [Fact]
    public void A_writer_that_never_closes_leaves_the_chunks_it_wrote()
    {
        var stream = new MemoryStream();
        var writer = new TraceWriter(stream, TraceSamples.Header(), TraceSamples.Image, TenPerChunk);
        foreach (var traceEvent in Events)
            writer.Append(traceEvent); // killed here: the last 5 events were never written

        using var reader = TraceSamples.Open(stream.ToArray());
        Assert.False(reader.Complete);
        Assert.Equal(Events.Take(30), reader.ReadEvents());
    }

    [Fact]
    public void A_trace_cut_inside_a_chunk_reads_up_to_the_last_complete_chunk()
    {
        var cutAt = Chunks()[2].Offset + 20;
        var bytes = TraceSamples.Write(Events, complete: false, options: TenPerChunk)[..(int)cutAt];

        using var reader = TraceSamples.Open(bytes);
        Assert.False(reader.Complete);
        Assert.Contains($"offset {Chunks()[2].Offset}", reader.IncompleteReason);
        Assert.Equal(2, reader.Index.Count);
        Assert.Equal(Events.Take(20), reader.ReadEvents());
    }

    [Fact]
    public void A_trace_cut_inside_a_chunk_header_reads_up_to_the_last_complete_chunk()
    {
        var bytes = TraceSamples.Write(Events, complete: false, options: TenPerChunk)[..(int)(Chunks()[1].Offset + 5)];

        using var reader = TraceSamples.Open(bytes);
        Assert.Equal(Events.Take(10), reader.ReadEvents());
    }

    [Fact]
    public void A_trace_cut_inside_its_footer_still_reads_every_event()
    {
        var bytes = TraceSamples.Write(Events, options: TenPerChunk);

        using var reader = TraceSamples.Open(bytes[..^3]);
        Assert.False(reader.Complete);
        Assert.Equal(Events, reader.ReadEvents());
    }

    [Fact]
    public void A_flipped_byte_in_a_chunk_reports_its_offset_after_the_events_before_it()
    {
        var bytes = TraceSamples.Write(Events, options: TenPerChunk);
        var damaged = Chunks()[2];
        bytes[damaged.Offset + TraceLayout.ChunkHeaderSize + 3] ^= 0x40;

        using var reader = TraceSamples.Open(bytes);
        var read = new List<TraceEvent>();
        var ex = Assert.Throws<TraceFormatException>(() => read.AddRange(reader.ReadEvents()));
        Assert.Equal(TraceError.DamagedChunk, ex.Error);
        Assert.Equal(damaged.Offset, ex.Offset);
        Assert.Contains($"offset {damaged.Offset}", ex.Message);
        Assert.DoesNotContain('\n', ex.Message);
        Assert.Equal(Events.Take(20), read);
    }

    [Fact]
    public void A_flipped_byte_in_an_incomplete_trace_is_reported_after_the_events_before_it()
    {
        var bytes = TraceSamples.Write(Events, complete: false, options: TenPerChunk);
        var damaged = Chunks()[1];
        bytes[damaged.Offset + TraceLayout.ChunkHeaderSize + 1] ^= 0x01;

        using var reader = TraceSamples.Open(bytes);
        Assert.Equal(damaged.Offset, reader.Damage?.Offset);
        var read = new List<TraceEvent>();
        var ex = Assert.Throws<TraceFormatException>(() => read.AddRange(reader.ReadEvents()));
        Assert.Equal(TraceError.DamagedChunk, ex.Error);
        Assert.Equal(damaged.Offset, ex.Offset);
        Assert.Equal(Events.Take(10), read);
    }

    [Fact]
    public void A_damaged_chunk_header_is_reported_with_its_offset()
    {
        var bytes = TraceSamples.Write(Events, options: TenPerChunk);
        var damaged = Chunks()[0];
        bytes[damaged.Offset + 1] ^= 0x10; // the kind field

        using var reader = TraceSamples.Open(bytes);
        var ex = Assert.Throws<TraceFormatException>(() => reader.ReadEvents().ToList());
        Assert.Equal(TraceError.DamagedChunk, ex.Error);
        Assert.Equal(damaged.Offset, ex.Offset);
    }

    [Fact]
    public void A_damaged_index_falls_back_to_scanning_and_is_reported_after_every_event()
    {
        var bytes = TraceSamples.Write(Events, options: TenPerChunk);
        bytes[^(TraceLayout.FooterSize + 2)] ^= 0xFF; // inside the index chunk's payload

        using var reader = TraceSamples.Open(bytes);
        Assert.False(reader.Complete);
        Assert.Contains("index", reader.IncompleteReason);
        var read = new List<TraceEvent>();
        var ex = Assert.Throws<TraceFormatException>(() => read.AddRange(reader.ReadEvents()));
        Assert.Equal(TraceError.DamagedChunk, ex.Error);
        Assert.Equal(Events, read);
    }

    [Fact]
    public void A_damaged_footer_is_damage_but_every_event_is_read()
    {
        var bytes = TraceSamples.Write(Events, options: TenPerChunk);
        bytes[^3] ^= 0x04; // the end magic

        using var reader = TraceSamples.Open(bytes);
        Assert.False(reader.Complete);
        Assert.Equal(bytes.Length - TraceLayout.FooterSize, reader.Damage?.Offset);
        var read = new List<TraceEvent>();
        Assert.Throws<TraceFormatException>(() => read.AddRange(reader.ReadEvents()));
        Assert.Equal(Events, read);
    }

    [Fact]
    public void A_stripped_index_and_footer_is_a_truncation_holding_every_event()
    {
        var bytes = TraceSamples.Write(Events, options: TenPerChunk);
        long indexOffset = BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(bytes.Length - TraceLayout.FooterSize));

        using var reader = TraceSamples.Open(bytes[..(int)indexOffset]);
        Assert.False(reader.Complete);
        Assert.Null(reader.Damage);
        Assert.Equal(Events, reader.ReadEvents());
    }

    [Fact]
    public void Swapped_chunks_break_the_header_chain()
    {
        var bytes = TraceSamples.Write(Events, complete: false, options: TenPerChunk);
        var c = Chunks();
        var a = bytes[(int)c[0].Offset..(int)c[1].Offset];
        var b = bytes[(int)c[1].Offset..(int)c[2].Offset];
        byte[] swapped = [.. bytes[..(int)c[0].Offset], .. b, .. a, .. bytes[(int)c[2].Offset..]];

        using var reader = TraceSamples.Open(swapped);
        Assert.Equal(c[0].Offset, reader.Damage?.Offset);
        Assert.Contains("checksum", reader.Damage!.Message);
        Assert.Empty(reader.Index);
    }

    [Fact]
    public void A_chunk_whose_events_go_back_in_time_is_damaged_even_when_its_checksums_agree()
    {
        // Rewrite the second chunk with events from before the first chunk's last one, chain and all.
        var first = Events.Take(10).ToList();
        var second = Events.Take(5).ToList();
        var stream = new MemoryStream();
        using (var w = new TraceWriter(stream, TraceSamples.Header(), TraceSamples.Image, new TraceWriterOptions { MaxChunkEvents = 10 }, leaveOpen: true))
        {
            foreach (var e in first) w.Append(e);
            w.Flush();
            // The writer refuses out-of-order events, so forge the chunk with the codec, continuing the chain.
        }
        var bytes = stream.ToArray();
        var last = TraceSamples.Open(bytes).Index[^1];
        uint chain = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan((int)last.Offset + ChunkHeader.ChainedBytes));
        var payload = MessagePackSerializer.Serialize(second.ToArray(), TraceMessagePack.Options);
        byte[] forged = [.. bytes, .. ChunkCodec.Encode(ChunkKind.Events, payload, chain)];

        using var reader = TraceSamples.Open(forged);
        Assert.Equal(bytes.Length, reader.Damage?.Offset);
        Assert.Contains("comes before", reader.Damage!.Message);
    }

    [Fact]
    public void A_file_that_shrinks_while_it_is_read_is_damage_not_an_end_of_stream_crash()
    {
        var bytes = TraceSamples.Write(Events, options: TenPerChunk);
        var stream = new MemoryStream();
        stream.Write(bytes);
        stream.Position = 0;
        using var reader = TraceReader.Open(stream);
        stream.SetLength(Chunks()[1].Offset + 5); // another process overwrote the trace

        var ex = Assert.Throws<TraceFormatException>(() => reader.ReadEvents().ToList());
        Assert.Equal(TraceError.DamagedChunk, ex.Error);
        Assert.Contains("shorter", ex.Message);
    }
}
