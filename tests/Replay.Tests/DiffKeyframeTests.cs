using Replayvisor.Engine.Session;
using Replayvisor.Engine.Trace;
using Replayvisor.Replay.Diff;
using Replayvisor.Replay.Keyframes;

namespace Replayvisor.Replay.Tests;

/// <summary>
/// Pinpointing from keyframes (docs/diff.md "Same guest image", step 2): with indexed traces each
/// run starts from its last keyframe before the window, so reaching the window costs at most one
/// keyframe interval per run wherever the window lies, and the result is the one found from 0.
/// </summary>
public class DiffKeyframeTests
{
    private static byte[] Indexed(byte[] trace, ulong interval)
    {
        using var reader = TraceReader.Open(new MemoryStream(trace));
        var output = new MemoryStream();
        TraceIndexer.Write(reader, output, interval);
        return output.ToArray();
    }

    private static DiffSide Side(string name, byte[] trace) => new(name, TraceReader.Open(new MemoryStream(trace)));

    /// <summary>
    /// <paramref name="indexed"/> with its keyframes and the hash of every checkpoint after
    /// <paramref name="after"/> changed: what a recording made by an engine that parts from this
    /// one there holds (its keyframes before that point are this recording's).
    /// </summary>
    private static byte[] CheckpointsDifferAfter(byte[] indexed, ulong after)
    {
        using var reader = TraceReader.Open(new MemoryStream(indexed));
        var output = new MemoryStream();
        using (var w = new TraceWriter(output, reader.Header, reader.GuestImage.Span, new TraceWriterOptions { Keyframes = true }, leaveOpen: true))
        {
            var keyframes = new Queue<TraceKeyframeInfo>(reader.Keyframes);
            foreach (var e in reader.ReadEvents())
            {
                while (keyframes.TryPeek(out var k) && k.Icount < e.Icount)
                    w.AppendKeyframe(k.Icount, keyframes.Dequeue().StateHash.AsSpan(), k.Layout, reader.ReadKeyframe(k));
                w.Append(e is CheckpointEvent c && c.Icount > after ? c with { StateHash = c.StateHash.AsSpan().ToArray().Select(x => (byte)~x).ToArray() } : e);
            }
            foreach (var k in keyframes) w.AppendKeyframe(k.Icount, k.StateHash.AsSpan(), k.Layout, reader.ReadKeyframe(k));
            w.Complete(reader.Summary!);
        }
        return output.ToArray();
    }

    [Fact]
    public void EachRunReachesTheWindowFromItsLastKeyframeAndFindsWhatARunFromZeroFinds()
    {
        // One recording with the host clock (the guest reads the time all along, so a run started
        // from a keyframe must take up the recorded inputs exactly where the keyframe stood), indexed
        // at two intervals so the runs start from different keyframes; run B's re-execution gets
        // instruction At wrong (an engine perturbation), and B's checkpoints after it differ, as a
        // recording made that way would have them.
        const ulong At = 4_100_000, IntervalA = 1_500_000, IntervalB = 1_250_000;
        byte[] recorded = Recordings.Record("sched", true, clock: ClockKind.Host, checkpointInterval: 500_000, maxInstructions: 6_000_000).Trace;
        byte[] a = Indexed(recorded, IntervalA), b = CheckpointsDifferAfter(Indexed(recorded, IntervalB), At);
        PinpointResult Find(bool useKeyframes) =>
            Pinpointer.Find(Side("a.rvt", a), Side("b.rvt", b), new PinpointOptions { UseKeyframes = useKeyframes, WrapInputsB = i => new FlipEdi(i, At, 1) });
        var fromZero = Find(useKeyframes: false);
        var fromKeyframes = Find(useKeyframes: true);

        Assert.Equal(At, fromZero.Icount);
        Assert.Equal((4_000_000UL, 4_500_001UL), (fromZero.StartIcount, fromZero.EndIcount)); // the checkpoints before and after At
        Assert.Equal(2 * fromZero.StartIcount, fromZero.ReachInstructions);
        Assert.Equal((0UL, 0UL), (fromZero.ReachedFromA, fromZero.ReachedFromB));

        // The same answer: instruction, window, registers, memory and parts of the state.
        Assert.Equal(fromZero.Icount, fromKeyframes.Icount);
        Assert.Equal((fromZero.StartIcount, fromZero.EndIcount), (fromKeyframes.StartIcount, fromKeyframes.EndIcount));
        Assert.Equal(fromZero.A, fromKeyframes.A);
        Assert.Equal(fromZero.B, fromKeyframes.B);
        Assert.Equal(fromZero.Registers, fromKeyframes.Registers);
        Assert.Equal("edi", Assert.Single(fromKeyframes.Registers).Name);
        Assert.Equal(fromZero.Memory.Select(m => (m.Physical, m.Virtual, m.Symbol, Convert.ToHexString(m.A), Convert.ToHexString(m.B))),
            fromKeyframes.Memory.Select(m => (m.Physical, m.Virtual, m.Symbol, Convert.ToHexString(m.A), Convert.ToHexString(m.B))));
        Assert.Equal(fromZero.StateParts, fromKeyframes.StateParts);
        Assert.Equal(fromZero.WindowInstructions, fromKeyframes.WindowInstructions);

        // Each run started from its last keyframe at or before the window's start (A at 3M, B at
        // 3.75M), and replayed only from there: the reach is bounded by the keyframe interval.
        ulong start = fromKeyframes.StartIcount;
        Assert.Equal((3_000_000UL, 3_750_000UL), (fromKeyframes.ReachedFromA, fromKeyframes.ReachedFromB));
        Assert.Equal(start - 3_000_000 + (start - 3_750_000), fromKeyframes.ReachInstructions);
        Assert.True(fromKeyframes.ReachInstructions < IntervalA + IntervalB, $"{fromKeyframes.ReachInstructions:N0} instructions reaching the window");
    }
}
