using Replayvisor.Engine.Trace;
using Xunit;

namespace Replayvisor.Engine.Tests.Trace;

public sealed class TraceRoundTripTests
{
    [Fact]
    public void Every_event_kind_round_trips_by_value()
    {
        var events = TraceSamples.OneOfEach();
        using var reader = TraceSamples.Open(TraceSamples.Write(events));

        Assert.Equal(events, reader.ReadEvents().ToList());
    }

    [Fact]
    public void Every_union_case_is_covered_by_the_samples()
    {
        var unionTypes = typeof(TraceEvent).GetCustomAttributes(typeof(MessagePack.UnionAttribute), false)
            .Cast<MessagePack.UnionAttribute>().Select(u => u.SubType).ToHashSet();
        var sampled = TraceSamples.OneOfEach().Select(e => e.GetType()).ToHashSet();

        Assert.Equal(unionTypes.OrderBy(t => t.Name), sampled.OrderBy(t => t.Name));
    }

    [Fact]
    public void Header_image_and_summary_round_trip()
    {
        using var reader = TraceSamples.Open(TraceSamples.Write(TraceSamples.OneOfEach()));

        Assert.Equal(TraceSamples.Header(), reader.Header);
        Assert.Equal("64", reader.Header.GetOption(RunOptionKeys.MemoryMib));
        Assert.Equal(TraceSamples.Image, reader.GuestImage.ToArray());
        Assert.True(reader.Complete);
        Assert.Null(reader.IncompleteReason);
        Assert.Equal(TraceSamples.Summary, reader.Summary);
        Assert.Equal(TraceLayout.BaseFormatVersion, reader.FormatVersion); // no keyframes: format 3, readable by format-3 builds
    }

    [Fact]
    public void Events_compare_by_value_including_arrays()
    {
        var a = new HypercallEvent(5, 13, [1, 2], 0, Multicall: [new MulticallEntry(1, 0)]);
        var b = new HypercallEvent(5, 13, new uint[] { 1, 2 }, 0, Multicall: [new MulticallEntry(1, 0)]);

        Assert.Equal(a, b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        Assert.NotEqual(a, b with { Args = [1, 3] });
        Assert.NotEqual<TraceEvent>(new ConsoleInputEvent(1, "a"u8.ToArray()), new ConsoleOutputEvent(1, "a"u8.ToArray()));
    }

    [Fact]
    public void Many_events_split_into_chunks_with_an_accurate_index()
    {
        var events = TraceSamples.Many(1000).ToList();
        var bytes = TraceSamples.Write(events, options: new TraceWriterOptions { MaxChunkEvents = 64 });
        using var reader = TraceSamples.Open(bytes);

        Assert.Equal(events, reader.ReadEvents().ToList());
        Assert.Equal(16, reader.Index.Count);
        Assert.All(reader.Index.SkipLast(1), c => Assert.Equal(64, c.EventCount));
        Assert.Equal(events[64].Icount, reader.Index[1].FirstIcount);
        Assert.Equal(events[127].Icount, reader.Index[1].LastIcount);
        Assert.Equal(events.Skip(64).Take(64), reader.ReadChunk(reader.Index[1]));
        Assert.Equal(16, reader.Stats.ChunkCount);
        Assert.Equal(1000, reader.Stats.EventCount);
        Assert.True(reader.Stats.CompressedBytes < reader.Stats.UncompressedBytes);
    }

    [Fact]
    public void Chunks_also_close_on_byte_size()
    {
        var events = Enumerable.Range(0, 10).Select(i => new ConsoleOutputEvent((ulong)i, new byte[1000])).ToList();
        using var reader = TraceSamples.Open(TraceSamples.Write(events, options: new TraceWriterOptions { MaxChunkBytes = 2500 }));

        Assert.Equal([3, 3, 3, 1], reader.Index.Select(c => c.EventCount));
        Assert.Equal(events, reader.ReadEvents());
    }

    [Fact]
    public void Flush_closes_the_pending_chunk()
    {
        var stream = new MemoryStream();
        using var writer = new TraceWriter(stream, TraceSamples.Header(), TraceSamples.Image, leaveOpen: true);
        writer.Append(new TimeEvent(1, TimeKind.Tsc, 1));
        writer.Flush();
        writer.Append(new TimeEvent(2, TimeKind.Tsc, 2));
        writer.Complete(TraceSamples.Summary);

        Assert.Equal(2, writer.ChunkCount);
        using var reader = TraceReader.Open(new MemoryStream(stream.ToArray()));
        Assert.Equal(2, reader.Index.Count);
    }

    [Fact]
    public void A_trace_without_events_is_complete_and_empty()
    {
        using var reader = TraceSamples.Open(TraceSamples.Write([]));

        Assert.True(reader.Complete);
        Assert.Empty(reader.ReadEvents());
        Assert.Empty(reader.Index);
    }

    [Fact]
    public void Writer_rejects_events_out_of_icount_order_and_appends_after_complete()
    {
        using var writer = new TraceWriter(new MemoryStream(), TraceSamples.Header(), TraceSamples.Image);
        writer.Append(new TimeEvent(10, TimeKind.Tsc, 1));
        writer.Append(new TimeEvent(10, TimeKind.Tsc, 2));

        Assert.Throws<ArgumentException>(() => writer.Append(new TimeEvent(9, TimeKind.Tsc, 3)));
        writer.Complete(TraceSamples.Summary);
        Assert.Throws<InvalidOperationException>(() => writer.Append(new TimeEvent(11, TimeKind.Tsc, 3)));
    }

    [Fact]
    public void Writer_rejects_a_header_whose_hash_is_not_the_image()
    {
        Assert.Throws<ArgumentException>(() =>
            new TraceWriter(new MemoryStream(), TraceSamples.Header(), new byte[] { 1, 2, 3 }));
    }

    [Fact]
    public void A_trace_can_start_in_the_middle_of_a_stream()
    {
        var trace = TraceSamples.Write(TraceSamples.OneOfEach());
        var stream = new MemoryStream();
        stream.Write(new byte[100]);
        stream.Write(trace);
        stream.Position = 100;

        using var reader = TraceReader.Open(stream);
        Assert.True(reader.Complete);
        Assert.Equal(TraceSamples.OneOfEach(), reader.ReadEvents());
    }
}
