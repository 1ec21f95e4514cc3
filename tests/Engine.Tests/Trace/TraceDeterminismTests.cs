using Replayvisor.Engine.Trace;
using Xunit;

namespace Replayvisor.Engine.Tests.Trace;

public sealed class TraceDeterminismTests
{
    [Fact]
    public void The_same_events_give_the_same_bytes()
    {
        var events = TraceSamples.OneOfEach().Concat(TraceSamples.Many(500).Select(e => e with { Icount = e.Icount + 6000 })).ToList();
        var options = new TraceWriterOptions { MaxChunkEvents = 100 };

        Assert.Equal(TraceSamples.Write(events, options: options), TraceSamples.Write(events, options: options));
        Assert.Equal(TraceSamples.Write(events, complete: false), TraceSamples.Write(events, complete: false));
    }

    [Fact]
    public void Option_insertion_order_does_not_change_the_header()
    {
        var a = TraceHeader.Create("b", "img", TraceSamples.Image, "k", new Dictionary<string, string> { ["x"] = "1", ["a"] = "2" });
        var b = TraceHeader.Create("b", "img", TraceSamples.Image, "k", new Dictionary<string, string> { ["a"] = "2", ["x"] = "1" });

        Assert.Equal(a, b);
        Assert.Equal(WriteEmpty(a), WriteEmpty(b));
    }

    private static byte[] WriteEmpty(TraceHeader header)
    {
        var stream = new MemoryStream();
        using (var writer = new TraceWriter(stream, header, TraceSamples.Image))
            writer.Complete(TraceSamples.Summary);
        return stream.ToArray();
    }
}
