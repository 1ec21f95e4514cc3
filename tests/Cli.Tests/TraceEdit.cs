using Replayvisor.Engine.Trace;

namespace Replayvisor.Cli.Tests;

public static class TraceEdit
{
    public static byte[] ChangeFirstHypercallResult(byte[] trace)
    {
        using var reader = TraceReader.Open(new MemoryStream(trace));
        var output = new MemoryStream();
        bool done = false;
        using (var w = new TraceWriter(output, reader.Header, reader.GuestImage.Span, leaveOpen: true))
        {
            foreach (var e in reader.ReadEvents())
            {
                if (!done && e is HypercallEvent h && h.Number == 29 - 11) { w.Append(h with { Result = h.Result + 1 }); done = true; continue; }
                w.Append(e);
            }
            w.Complete(reader.Summary!);
        }
        if (!done) throw new InvalidOperationException("no console_io hypercall in the trace");
        return output.ToArray();
    }

    public static long LastEventChunkOffset(byte[] trace)
    {
        using var reader = TraceReader.Open(new MemoryStream(trace));
        return reader.Index[^1].Offset;
    }
}
