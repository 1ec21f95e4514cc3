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
    public void A_damaged_index_falls_back_to_scanning()
    {
        var bytes = TraceSamples.Write(Events, options: TenPerChunk);
        bytes[^(TraceLayout.FooterSize + 2)] ^= 0xFF; // inside the index chunk's payload

        using var reader = TraceSamples.Open(bytes);
        Assert.False(reader.Complete);
        Assert.Contains("index", reader.IncompleteReason);
        Assert.Equal(Events, reader.ReadEvents());
    }
}
