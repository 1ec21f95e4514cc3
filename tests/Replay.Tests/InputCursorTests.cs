using Replayvisor.Engine.Session;
using Replayvisor.Engine.Trace;
using Replayvisor.Replay.Streaming;

namespace Replayvisor.Replay.Tests;

/// <summary>
/// <see cref="InputCursor.NoInputBefore"/> keeps the count its last answer covers: its answers are
/// those of asking the cursor every time (<see cref="EventCursor.NoneBefore"/>), also after the cursor
/// moved on and after a new position (a seek backwards) forgets it.
/// </summary>
public class InputCursorTests
{
    private static readonly Lazy<byte[]> EchoHost = new(() => Recordings.Record("echo", false, ClockKind.Host).Trace);

    /// <summary>Every input's count, in order (a cursor of its own, asked nothing else).</summary>
    private static List<ulong> InputCounts(TraceReader reader)
    {
        var cursor = new InputCursor(new ChunkCache(reader));
        var counts = new List<ulong>();
        while (cursor.Peek is { } input)
        {
            counts.Add(input.Icount);
            cursor.Take();
        }
        return counts;
    }

    /// <summary>The answer from the counts: no input lies below <paramref name="icount"/> among those not taken.</summary>
    private static bool Expected(List<ulong> counts, int taken, ulong icount) => taken >= counts.Count || counts[taken] >= icount;

    [Fact]
    public void AnswersAreThoseOfTheInputsLeftAfterTakingAndAfterASeekBack()
    {
        using var reader = TraceReader.Open(new MemoryStream(EchoHost.Value));
        var counts = InputCounts(reader);
        Assert.True(counts.Count > 2, "the host-clock trace has inputs");
        var cursor = new InputCursor(new ChunkCache(reader));
        var start = cursor.Position;
        ulong last = counts[^1];
        ulong[] asks = [0, 1, counts[0], counts[0] + 1, counts[1], counts[1] + 1, last / 2, last, last + 1, ulong.MaxValue];
        void CheckAll(int taken)
        {
            // Each ask twice, and in an order that goes back and forth (the kept count answers the later ones).
            foreach (ulong icount in asks.Concat(asks.Reverse()))
                Assert.Equal(Expected(counts, taken, icount), cursor.NoInputBefore(icount));
        }
        CheckAll(0);
        for (int taken = 0; taken < counts.Count; taken++)
        {
            if (taken % 7 == 0) CheckAll(taken);
            Assert.Equal(counts[taken], cursor.Peek!.Icount);
            cursor.Take();
        }
        CheckAll(counts.Count);
        // A seek back to the start: every input is ahead again, whatever the cursor answered before.
        cursor.Position = start;
        CheckAll(0);
        cursor.Take();
        CheckAll(1);
    }
}
