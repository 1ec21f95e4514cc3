using Replayvisor.Engine.Trace;
using Replayvisor.Replay.Stepping;

namespace Replayvisor.Replay.Keyframes;

/// <summary>A trace cannot be indexed (incomplete, too old, or its replay diverged): one line saying why.</summary>
public sealed class IndexException(string message, bool diverged = false) : Exception(message)
{
    /// <summary>The replay parted from the recording (rather than the trace being unsuitable).</summary>
    public bool Diverged { get; } = diverged;
}

/// <summary>What <see cref="TraceIndexer.Write"/> wrote.</summary>
public sealed record IndexResult(int Keyframes, long KeyframeBytes, ulong FinalIcount);

/// <summary>
/// `replayvisor index` (docs/time-travel.md "Keyframes"): copies a complete trace chunk for chunk
/// (header, guest image, every events chunk and the summary unchanged) into a format-3 trace with a
/// keyframe every <c>interval</c> instructions, each made by replaying the trace to that point.
/// The replay runs to the end, so a trace whose replay diverges gets no keyframes.
/// </summary>
public static class TraceIndexer
{
    public static IndexResult Write(TraceReader reader, Stream output, ulong interval)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentOutOfRangeException.ThrowIfZero(interval);
        if (!reader.Complete || reader.Summary is null)
            throw new IndexException($"the trace is incomplete ({reader.IncompleteReason}): only a complete trace can be indexed");
        if (reader.FormatVersion < 2)
            throw new IndexException($"the trace is in format {reader.FormatVersion}: keyframes need format 2 or later (re-record it)");
        using var writer = new TraceWriter(output, reader.Header, reader.GuestImage.Span, new TraceWriterOptions { Keyframes = true }, leaveOpen: true);
        foreach (var chunk in reader.Index) writer.AppendChunk(reader.ReadChunk(chunk));
        var replayer = new TraceReplayer(reader);
        long bytes = 0;
        while (true)
        {
            ulong next = (replayer.Icount / interval + 1) * interval;
            var stop = replayer.Step(new StepConstraints { ToIcount = next });
            if (stop.Kind == StopKind.Diverged)
                throw new IndexException($"the replay diverged at instruction {replayer.Verifier.First!.Icount}: {replayer.Verifier.First.What}", diverged: true);
            if (stop.Kind != StopKind.Reached) break;
            var payload = KeyframeCodec.Encode(replayer.Capture());
            writer.AppendKeyframe(replayer.Icount, replayer.Machine.StateHash(), KeyframeCodec.Layout, payload);
            bytes += payload.Length;
        }
        if (replayer.Verifier.First is { } d) throw new IndexException($"the replay diverged at instruction {d.Icount}: {d.What}", diverged: true);
        writer.Complete(reader.Summary);
        return new IndexResult(writer.KeyframeCount, bytes, replayer.Icount);
    }
}
