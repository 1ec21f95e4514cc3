using Replayvisor.Engine.Trace;

namespace Replayvisor.Replay.Tests;

/// <summary>A trace that does not match the guest's behaviour is caught at the event that differs.</summary>
public class TamperTests
{
    private static readonly Lazy<byte[]> Sched = new(() => Recordings.Record("sched", true).Trace);

    [Fact]
    public void ADifferentHypercallResultIsDetectedAtThatEvent()
    {
        HypercallEvent? target = null;
        byte[] bad = Recordings.Rewrite(Sched.Value, e =>
        {
            if (target == null && e is HypercallEvent { Number: 26 } h) { target = h; return h with { Result = h.Result - 1 }; }
            return e;
        });
        Assert.NotNull(target);
        var r = Recordings.Replay(bad);
        Assert.NotNull(r.Divergence);
        Assert.Equal(target!.Icount, r.Divergence!.Icount);
        Assert.Equal(target with { Result = target.Result - 1 }, r.Divergence.Expected);
        Assert.Equal(target, r.Divergence.Actual);
        Assert.Contains("divergence at instruction", r.Report);
    }

    [Fact]
    public void AMovedUpcallIsDetectedWhereItWasRecorded()
    {
        UpcallEvent? moved = null;
        byte[] bad = Recordings.Rewrite(Sched.Value, e =>
        {
            if (moved == null && e is UpcallEvent u) { moved = u; return u with { Icount = u.Icount + 1 }; }
            return e;
        });
        Assert.NotNull(moved);
        var r = Recordings.Replay(bad);
        Assert.NotNull(r.Divergence);
        Assert.Equal(moved!.Icount, r.Divergence!.Icount);
        Assert.IsType<UpcallEvent>(r.Divergence.Actual);
    }

    [Fact]
    public void AChangedCheckpointHashIsDetected()
    {
        CheckpointEvent? changed = null;
        byte[] bad = Recordings.Rewrite(Sched.Value, e =>
        {
            if (changed == null && e is CheckpointEvent c && c.Icount > 10_000_000)
            {
                changed = c;
                byte[] h = c.StateHash.ToArray();
                h[0] ^= 1;
                return c with { StateHash = h };
            }
            return e;
        });
        var r = Recordings.Replay(bad);
        Assert.NotNull(r.Divergence);
        Assert.Equal(changed!.Icount, r.Divergence!.Icount);
    }

    [Fact]
    public void ChangedConsoleInputIsDetectedInTheOutput()
    {
        byte[] trace = Recordings.Record("echo", false).Trace;
        byte[] bad = Recordings.Rewrite(trace, e => e is ConsoleInputEvent c
            ? c with { Bytes = System.Text.Encoding.ASCII.GetBytes(System.Text.Encoding.ASCII.GetString(c.Bytes.AsSpan()).Replace("hello", "HELLO")) }
            : e);
        var r = Recordings.Replay(bad);
        Assert.NotNull(r.Divergence);
        Assert.IsType<ConsoleOutputEvent>(r.Divergence!.Expected);
    }

    [Fact]
    public void AKilledRecorderLeavesAReplayablePrefix()
    {
        byte[] full = Sched.Value;
        using var reader = TraceReader.Open(new MemoryStream(full));
        // Cut inside the last event chunk: the index, footer and the tail are lost, as if the recorder was killed.
        var chunks = reader.Index;
        long cut = chunks[^1].Offset + 10;
        byte[] killed = full.AsSpan(0, (int)cut).ToArray();
        var r = Recordings.Replay(killed);
        Assert.False(r.TraceComplete);
        Assert.Null(r.Divergence);
        Assert.True(r.Exit.Icount > 0);
        Assert.True(r.Exit.Icount <= reader.Summary!.FinalIcount);
    }

    [Fact]
    public void ADamagedChunkIsReportedWithItsOffset()
    {
        byte[] full = (byte[])Sched.Value.Clone();
        using var reader = TraceReader.Open(new MemoryStream(Sched.Value));
        long offset = reader.Index[^1].Offset;
        full[offset + 20] ^= 0xFF;
        var e = Assert.Throws<TraceFormatException>(() => Recordings.Replay(full));
        Assert.Equal(TraceError.DamagedChunk, e.Error);
        Assert.Equal(offset, e.Offset);
    }
}
