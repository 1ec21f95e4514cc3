using Replayvisor.Engine.Session;
using Replayvisor.Engine.Trace;
using Replayvisor.Replay.Keyframes;
using Replayvisor.Replay.Stepping;
using Replayvisor.Replay.TimeTravel;

namespace Replayvisor.Replay.Tests.TimeTravel;

/// <summary>
/// Keyframes (docs/time-travel.md "Keyframes"): an indexed trace holds everything the original
/// did, and a fresh session seeks from the nearest keyframe to exactly the state a straight
/// replay has there; a keyframe that restores any other state is refused as damage.
/// </summary>
public class KeyframeTests
{
    private static byte[] Indexed(string name, ulong interval)
    {
        using var reader = GoldenSessions.Open(name);
        using var output = new MemoryStream();
        TraceIndexer.Write(reader, output, interval);
        return output.ToArray();
    }

    private static TraceReader Read(byte[] trace) => TraceReader.Open(new MemoryStream(trace));

    /// <summary>The state hash a straight replay of the original trace has at each target.</summary>
    private static Dictionary<ulong, byte[]> Straight(string name, IEnumerable<ulong> targets)
    {
        using var reader = GoldenSessions.Open(name);
        var r = new TraceReplayer(reader);
        var hashes = new Dictionary<ulong, byte[]>();
        foreach (ulong t in targets.Order())
        {
            Assert.Equal(StopKind.Reached, r.Step(new StepConstraints { ToIcount = t }).Kind);
            hashes[t] = r.Machine.StateHash();
        }
        return hashes;
    }

    [Theory]
    [InlineData("sched-host-chaos.rvt", 1ul << 20)]
    [InlineData("echo.rvt", 1ul << 13)]
    [InlineData("events.rvt", 1ul << 14)]
    public void AnIndexedTraceKeepsEverythingAndAddsAKeyframePerInterval(string name, ulong interval)
    {
        using var original = GoldenSessions.Open(name);
        using var indexed = Read(Indexed(name, interval));
        Assert.Equal(3, original.FormatVersion);
        Assert.Equal(4, indexed.FormatVersion);
        Assert.True(indexed.Complete);
        Assert.Equal(original.Header, indexed.Header);
        Assert.True(original.GuestImage.Span.SequenceEqual(indexed.GuestImage.Span));
        Assert.Equal(original.Summary, indexed.Summary);
        Assert.Equal(original.Index.Select(c => (c.EventCount, c.FirstIcount, c.LastIcount)), indexed.Index.Select(c => (c.EventCount, c.FirstIcount, c.LastIcount)));
        Assert.Equal(original.ReadEvents(), indexed.ReadEvents());
        ulong end = original.Summary!.FinalIcount;
        Assert.Equal(Enumerable.Range(1, (int)(end / interval)).Select(i => (ulong)i * interval), indexed.Keyframes.Select(k => k.Icount));
        Assert.All(indexed.Keyframes, k => Assert.Equal(KeyframeCodec.Layout, k.Layout));
    }

    [Theory]
    [InlineData("sched-host-chaos.rvt", 1ul << 20)]
    [InlineData("echo.rvt", 1ul << 13)]
    public void AFreshSessionSeeksFromKeyframesToTheStatesAStraightReplayHas(string name, ulong interval)
    {
        using var probe = GoldenSessions.Open(name);
        ulong end = probe.Summary!.FinalIcount;
        ulong[] targets = [end * 4 / 5, end / 3, interval * 2, end - 1, interval * 3 + 17, 5];
        var straight = Straight(name, targets);
        var s = new TimeTravelSession(Read(Indexed(name, interval)));
        Assert.Equal(0, s.KeyframesIgnored);
        foreach (ulong t in targets)
        {
            Assert.Equal(StopKind.Reached, s.Goto(t).Kind);
            Assert.Equal(straight[t], s.Replayer.Machine.StateHash());
        }
        Assert.True(s.KeyframesLoaded >= 3, $"{s.KeyframesLoaded} keyframes loaded");
        // The restored cursors, clock and verifier carry on: the rest of the trace replays bit-exactly.
        Assert.Equal(StopKind.EndOfTrace, s.Step(new StepConstraints()).Kind);
        Assert.Null(s.Replayer.Verifier.First);
        Assert.Equal(end, s.Icount);
    }

    [Fact]
    public void KeyframesOfASeveralVcpuRunSeekToTheStatesAStraightReplayHas()
    {
        // Four vCPUs with host time (docs/xen-model.md "Several vCPUs"): per-vCPU state travels in keyframes too.
        byte[] trace = Recordings.Record("smp", true, ClockKind.Host, checkpointInterval: 20_000, vcpus: 4).Trace;
        using var original = Read(trace);
        ulong end = original.Summary!.FinalIcount;
        using var output = new MemoryStream();
        TraceIndexer.Write(original, output, end / 6);
        ulong[] targets = [end * 4 / 5, end / 2 + 3, end / 5];
        var straight = new Dictionary<ulong, byte[]>();
        using (var again = Read(trace))
        {
            var r = new TraceReplayer(again);
            foreach (ulong t in targets.Order()) { r.Step(new StepConstraints { ToIcount = t }); straight[t] = r.Machine.StateHash(); }
        }
        var s = new TimeTravelSession(Read(output.ToArray()));
        foreach (ulong t in targets)
        {
            Assert.Equal(StopKind.Reached, s.Goto(t).Kind);
            Assert.Equal(straight[t], s.Replayer.Machine.StateHash());
        }
        Assert.True(s.KeyframesLoaded >= 2);
        Assert.Equal(StopKind.EndOfTrace, s.Step(new StepConstraints()).Kind);
        Assert.Null(s.Replayer.Verifier.First);
    }

    [Fact]
    public void ReverseStepAfterAKeyframeSeekRetracesTheRegisters()
    {
        var s = new TimeTravelSession(Read(Indexed("sched-host-chaos.rvt", 1 << 20)));
        ulong target = (3ul << 20) + 40;
        s.Goto(target);
        Assert.Equal(1, s.KeyframesLoaded);
        var forward = new List<string>();
        for (int i = 0; i < 60; i++) { forward.Add(GoldenSessions.Registers(s.Replayer.Machine.Cpu)); s.StepInstruction(); }
        for (int i = 59; i >= 0; i--)
        {
            s.ReverseStepInstruction();
            Assert.Equal(forward[i], GoldenSessions.Registers(s.Replayer.Machine.Cpu));
        }
    }

    [Fact]
    public void ReverseContinueFromAFreshSessionScansBackFromKeyframesToTheSameHits()
    {
        // A watchpoint on the scheduler's tick counter, reverse-continued twice from near the end:
        // the indexed trace starts its windows at keyframes (and snapshots run forward from them).
        using var probe = GoldenSessions.Open("sched-host-chaos.rvt");
        ulong end = probe.Summary!.FinalIcount;
        uint tick = Engine.Boot.GuestSymbols.FromImage(probe.GuestImage.Span).AddressOf("tick")!.Value;
        var options = new TimeTravelOptions { SnapshotInterval = 1 << 18 };
        List<(StopKind, ulong, ulong)> Hits(TimeTravelSession s)
        {
            s.Goto(end - 1000);
            var c = new StepConstraints { Watchpoints = [new Watchpoint(1, tick, 4, WatchKind.Write)] };
            var hits = new List<(StopKind, ulong, ulong)>();
            for (int i = 0; i < 2; i++)
            {
                var stop = s.ReverseContinue(c);
                hits.Add((stop.Kind, stop.Icount, stop.Watch?.NewValue ?? 0));
            }
            return hits;
        }
        var plain = Hits(GoldenSessions.TimeTravel("sched-host-chaos.rvt", options));
        var indexed = new TimeTravelSession(Read(Indexed("sched-host-chaos.rvt", 1 << 20)), options);
        Assert.Equal(plain, Hits(indexed));
        Assert.All(plain, h => Assert.Equal(StopKind.Watchpoint, h.Item1));
        Assert.True(indexed.KeyframesLoaded >= 1);
    }

    [Fact]
    public void AKeyframeWhoseBytesAreDamagedIsReportedWithItsOffset()
    {
        var bytes = Indexed("events.rvt", 1 << 14);
        TraceKeyframeInfo third;
        using (var r = Read(bytes)) third = r.Keyframes[2];
        bytes[third.Offset + 20 + third.StoredLength / 2] ^= 0x40; // inside the payload, past the 20-byte chunk header
        var s = new TimeTravelSession(Read(bytes));
        var e = Assert.Throws<TraceFormatException>(() => s.Goto(third.Icount + 5));
        Assert.Equal(TraceError.DamagedChunk, e.Error);
        Assert.Equal(third.Offset, e.Offset);
    }

    [Fact]
    public void AKeyframeThatRestoresAnotherStateIsRefusedNotUsed()
    {
        // A well-formed trace whose one keyframe holds the state at its count with EAX changed.
        using var reader = GoldenSessions.Open("events.rvt");
        using var output = new MemoryStream();
        using (var writer = new TraceWriter(output, reader.Header, reader.GuestImage.Span, new TraceWriterOptions { Keyframes = true }, leaveOpen: true))
        {
            foreach (var chunk in reader.Index) writer.AppendChunk(reader.ReadChunk(chunk));
            var r = new TraceReplayer(reader);
            r.Step(new StepConstraints { ToIcount = 50_000 });
            var state = r.Capture();
            var cpu = state.Machine.Cpu with { Gpr = [.. state.Machine.Cpu.Gpr] };
            cpu.Gpr[0] ^= 1;
            var wrong = state with { Machine = state.Machine with { Cpu = cpu } };
            writer.AppendKeyframe(50_000, r.Machine.StateHash(), KeyframeCodec.Layout, KeyframeCodec.Encode(wrong));
            writer.Complete(reader.Summary!);
        }
        var s = new TimeTravelSession(Read(output.ToArray()));
        var e = Assert.Throws<TraceFormatException>(() => s.Goto(60_000));
        Assert.Equal(TraceError.DamagedChunk, e.Error);
        Assert.Contains("does not match its recorded hash", e.Message);
        Assert.Equal(0ul, s.Icount); // back at the start, not at a state the trace never had
    }

    [Fact]
    public void KeyframesOfAnotherLayoutAreIgnoredAndSeekingReplaysInstead()
    {
        using var reader = GoldenSessions.Open("events.rvt");
        using var output = new MemoryStream();
        using (var writer = new TraceWriter(output, reader.Header, reader.GuestImage.Span, new TraceWriterOptions { Keyframes = true }, leaveOpen: true))
        {
            foreach (var chunk in reader.Index) writer.AppendChunk(reader.ReadChunk(chunk));
            writer.AppendKeyframe(50_000, new byte[16], "another-engine", [1, 2, 3]);
            writer.Complete(reader.Summary!);
        }
        var straight = Straight("events.rvt", [60_000]);
        var s = new TimeTravelSession(Read(output.ToArray()));
        Assert.Equal(1, s.KeyframesIgnored);
        Assert.Equal(StopKind.Reached, s.Goto(60_000).Kind);
        Assert.Equal(straight[60_000], s.Replayer.Machine.StateHash());
        Assert.Equal(0, s.KeyframesLoaded);
    }

    [Fact]
    public void TheGoldenFormatFourTraceReplaysAndSeeksLikeTheTraceItIndexes()
    {
        // traces/v4/events-indexed.rvt is traces/events.rvt indexed (traces/record.sh).
        byte[] golden = File.ReadAllBytes(Path.Combine(Guests.RepoRoot, "traces", "v4", "events-indexed.rvt"));
        using (var reader = Read(golden))
        {
            Assert.Equal(4, reader.FormatVersion);
            Assert.Equal([32_768ul, 65_536ul, 98_304ul], reader.Keyframes.Select(k => k.Icount));
            using var plain = GoldenSessions.Open("events.rvt");
            Assert.Equal(plain.ReadEvents(), reader.ReadEvents());
            var r = new TraceReplayer(reader);
            Assert.Equal(StopKind.EndOfTrace, r.Step(new StepConstraints()).Kind);
            Assert.Null(r.Verifier.First);
        }
        var straight = Straight("events.rvt", [70_000]);
        var s = new TimeTravelSession(Read(golden));
        Assert.Equal(StopKind.Reached, s.Goto(70_000).Kind);
        Assert.Equal(straight[70_000], s.Replayer.Machine.StateHash());
        // Keyframes of this build's layout are used; after a change to a snapshot record they are
        // ignored (and traces/record.sh writes them again), never misread.
        if (s.Reader.Keyframes[0].Layout == KeyframeCodec.Layout) Assert.Equal(1, s.KeyframesLoaded);
        else Assert.Equal(3, s.KeyframesIgnored);
    }
}
