using Replayvisor.Engine.Trace;

namespace Replayvisor.Cli.Tests;

public static class TraceEdit
{
    /// <summary>The trace with the result of its first hypercall <paramref name="number"/> (console_io unless told) one higher.</summary>
    public static byte[] ChangeFirstHypercallResult(byte[] trace, int number = 18)
    {
        using var reader = TraceReader.Open(new MemoryStream(trace));
        var output = new MemoryStream();
        bool done = false;
        using (var w = new TraceWriter(output, reader.Header, reader.GuestImage.Span, leaveOpen: true))
        {
            foreach (var e in reader.ReadEvents())
            {
                if (!done && e is HypercallEvent h && h.Number == number) { w.Append(h with { Result = h.Result + 1 }); done = true; continue; }
                w.Append(e);
            }
            w.Complete(reader.Summary!);
        }
        if (!done) throw new InvalidOperationException($"no hypercall {number} in the trace");
        return output.ToArray();
    }

    public static long LastEventChunkOffset(byte[] trace)
    {
        using var reader = TraceReader.Open(new MemoryStream(trace));
        return reader.Index[^1].Offset;
    }

    /// <summary>The trace with its keyframes marked as written by another snapshot layout (an index made by another engine build).</summary>
    public static byte[] KeyframesOfAnotherLayout(byte[] trace)
    {
        using var reader = TraceReader.Open(new MemoryStream(trace));
        if (reader.Keyframes.Count == 0) throw new InvalidOperationException("the trace has no keyframes");
        var output = new MemoryStream();
        using (var w = new TraceWriter(output, reader.Header, reader.GuestImage.Span, new TraceWriterOptions { Keyframes = true }, leaveOpen: true))
        {
            var keyframes = new Queue<TraceKeyframeInfo>(reader.Keyframes);
            void Keyframe(TraceKeyframeInfo k) => w.AppendKeyframe(k.Icount, k.StateHash.AsSpan(), k.Layout + "-other", reader.ReadKeyframe(k));
            foreach (var e in reader.ReadEvents())
            {
                while (keyframes.TryPeek(out var k) && k.Icount < e.Icount) Keyframe(keyframes.Dequeue());
                w.Append(e);
            }
            foreach (var k in keyframes) Keyframe(k);
            w.Complete(reader.Summary!);
        }
        return output.ToArray();
    }
}
