using Replayvisor.Engine.Trace;
using Xunit;

namespace Replayvisor.Engine.Tests.Trace;

/// <summary>Keyframe chunks (format 4, docs/trace-format.md "Keyframe chunks") between and after events chunks.</summary>
public sealed class KeyframeChunkTests
{
    private static readonly byte[] Hash = [.. Enumerable.Range(0, 16).Select(i => (byte)i)];

    /// <summary>40 events in chunks of 8, with a keyframe after every 16 (so some sit between events chunks).</summary>
    private static byte[] Interleaved(bool complete)
    {
        var stream = new MemoryStream();
        using (var writer = new TraceWriter(stream, TraceSamples.Header(), TraceSamples.Image,
            new TraceWriterOptions { MaxChunkEvents = 8, Keyframes = true }, leaveOpen: true))
        {
            var events = TraceSamples.Many(40).ToList();
            for (int i = 0; i < events.Count; i++)
            {
                writer.Append(events[i]);
                if (i % 16 == 15) writer.AppendKeyframe(events[i].Icount, Hash, "test-layout", Enumerable.Repeat((byte)i, 3000).ToArray());
            }
            if (complete) writer.Complete(TraceSamples.Summary);
        }
        return stream.ToArray();
    }

    [Fact]
    public void Keyframes_between_events_chunks_are_listed_and_read_back()
    {
        using var reader = TraceSamples.Open(Interleaved(complete: true));
        Assert.Equal(4, reader.FormatVersion);
        Assert.True(reader.Complete);
        Assert.Equal(TraceSamples.Many(40), reader.ReadEvents());
        Assert.Equal(2, reader.Keyframes.Count);
        Assert.All(reader.Keyframes, k => Assert.Equal("test-layout", k.Layout));
        Assert.Equal(Hash, reader.Keyframes[1].StateHash.ToArray());
        Assert.Equal(Enumerable.Repeat((byte)31, 3000), reader.ReadKeyframe(reader.Keyframes[1]));
    }

    [Fact]
    public void An_incomplete_trace_scans_past_its_keyframes_to_every_event()
    {
        using var reader = TraceSamples.Open(Interleaved(complete: false));
        Assert.False(reader.Complete);
        Assert.Null(reader.Damage);
        Assert.Equal(TraceSamples.Many(40), reader.ReadEvents());
        Assert.Empty(reader.Keyframes);
    }

    [Fact]
    public void A_trace_without_keyframes_is_written_in_format_3()
    {
        var plain = TraceSamples.Write(TraceSamples.OneOfEach());
        using var reader = TraceSamples.Open(plain);
        Assert.Equal(3, reader.FormatVersion);
        Assert.Empty(reader.Keyframes);
        Assert.Throws<InvalidOperationException>(() =>
            new TraceWriter(new MemoryStream(), TraceSamples.Header(), TraceSamples.Image).AppendKeyframe(1, Hash, "x", [1]));
    }

    [Fact]
    public void A_damaged_keyframe_is_reported_at_its_offset_when_read()
    {
        var bytes = Interleaved(complete: true);
        long offset;
        using (var r = TraceSamples.Open(bytes)) offset = r.Keyframes[0].Offset;
        bytes[offset + 20 + 5] ^= 1; // a payload byte (the chunk header is 20 bytes)
        using var reader = TraceSamples.Open(bytes);
        Assert.Equal(TraceSamples.Many(40), reader.ReadEvents()); // the events are intact
        var e = Assert.Throws<TraceFormatException>(() => reader.ReadKeyframe(reader.Keyframes[0]));
        Assert.Equal(TraceError.DamagedChunk, e.Error);
        Assert.Equal(offset, e.Offset);
    }
}
