using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Trace;
using Replayvisor.Record;
using Replayvisor.Replay.Stepping;

namespace Replayvisor.Replay.Tests;

/// <summary>
/// A replay stops the CPU where its recording did (the recorder's periodic polls, Engine/Inputs/PollPeriod),
/// so its run loop enters the same blocks and the compiled tier forms the same regions (BlocksCompiled
/// counts every region's blocks): the replay
/// runs the code the recording ran (the sched guest's hot loop ran in a larger, slower region
/// when the replay stopped only every TraceReplayer.SliceLength instructions), and its own slice
/// ends add no stop (they wait for one the recording made).
/// </summary>
public class ReplaySlicesTests
{
    [Theory]
    [InlineData("sched")]
    [InlineData("ticker")]
    public void ReplayDecodesAndCompilesTheBlocksItsRecordingDid(string name)
    {
        var options = new XenMachineOptions { MemoryMiB = 32, CompileThreshold = 50 };
        var trace = new MemoryStream();
        long decoded, compiled;
        using (var s = new LiveSession(new LiveRequest
        {
            Kernel = Guests.Image(name, pae: true), ImageName = name + "-pae.elf", Machine = options, Trace = trace,
            ConsoleOutput = Stream.Null, CheckpointInterval = 10_000_000,
        }))
        {
            Assert.Equal(MachineExitKind.PoweredOff, s.Run().Exit.Kind);
            decoded = s.Machine.Cpu.Blocks.BlocksDecoded;
            compiled = s.Machine.Cpu.BlocksCompiled + s.Machine.Cpu.CompiledCodeReused;
        }
        using var reader = TraceReader.Open(new MemoryStream(trace.ToArray()));
        var replay = new TraceReplayer(reader, compileThreshold: 50);
        var stop = replay.Step(new StepConstraints());
        Assert.Equal(StopKind.EndOfTrace, stop.Kind);
        Assert.Null(replay.Verifier.First);
        Assert.True(compiled > 0, "nothing was compiled");
        Assert.Equal(decoded, replay.Machine.Cpu.Blocks.BlocksDecoded);
        Assert.Equal(compiled, replay.Machine.Cpu.BlocksCompiled + replay.Machine.Cpu.CompiledCodeReused);
        Assert.True(replay.MachineRuns > 1, "the replay ran in one piece: its slices were not tested");
    }
}

/// <summary>
/// The input cursor looks ahead for the next input before the checks reach a chunk (a trace without
/// inputs is looked through while the guest runs, as far as the chunks read on the chunk reader thread allow at
/// each stop); the chunks it decodes are kept for the checks (ChunkCache.InputsIn), so a replay reads each
/// chunk once.
/// </summary>
public class ChunkReadsTests
{
    private static readonly Lazy<byte[]> Ticker = new(() =>
    {
        var trace = new MemoryStream();
        using (var s = new LiveSession(new LiveRequest
        {
            Kernel = Guests.Image("ticker", pae: true), ImageName = "ticker-pae.elf", Machine = new XenMachineOptions { MemoryMiB = 32 },
            Trace = trace, ConsoleOutput = Stream.Null, // virtual clock: no inputs; chunks of the default size
        }))
            Assert.Equal(MachineExitKind.PoweredOff, s.Run().Exit.Kind);
        return trace.ToArray();
    });

    [Fact]
    public void AReplayWithoutInputsReadsEachChunkOnce()
    {
        using var reader = TraceReader.Open(new MemoryStream(Ticker.Value));
        Assert.InRange(reader.Index.Count, 3, Streaming.ChunkCache.AheadCapacity);
        var replay = new TraceReplayer(reader);
        Assert.Equal(StopKind.EndOfTrace, replay.Step(new StepConstraints()).Kind);
        Assert.Null(replay.Verifier.First);
        Assert.Equal(reader.Index.Count, replay.Chunks.ChunksRead);
        Assert.True(replay.Inputs.Cursor!.KnownAtEnd);
    }

    [Fact]
    public void AReplayWithoutInputsStartsBeforeItsChunksAreLookedThrough()
    {
        using var reader = TraceReader.Open(new MemoryStream(Ticker.Value));
        var replay = new TraceReplayer(reader);
        // Built and ready to run with only the first chunk read (its checks): no wait for the look through every chunk.
        Assert.Equal(1, replay.Chunks.ChunksRead);
        Assert.False(replay.Inputs.Cursor!.KnownAtEnd);
        Assert.Equal(StopKind.EndOfTrace, replay.Step(new StepConstraints()).Kind);
        Assert.Null(replay.Verifier.First);
        Assert.Equal(reader.Index.Count, replay.Chunks.ChunksRead);
    }

    [Fact]
    public void DamageInATraceWithoutInputsIsReportedByAReplayThatStopsShortOfIt()
    {
        byte[] damaged = (byte[])Ticker.Value.Clone();
        ulong to;
        long offset;
        using (var intact = TraceReader.Open(new MemoryStream(Ticker.Value)))
        {
            offset = intact.Index[^1].Offset;
            to = intact.Index[0].LastIcount;
        }
        damaged[offset + 20] ^= 0xFF;
        using var reader = TraceReader.Open(new MemoryStream(damaged));
        var r = new ReplaySession(reader, null, to).Run();
        // The replay stopped in the first chunk; the input cursor still looks on to the end and meets the damage.
        Assert.Null(r.Divergence);
        Assert.True(r.Exit.Icount >= to && r.Exit.Icount < reader.Index[1].LastIcount);
        Assert.Equal(TraceError.DamagedChunk, r.Damage!.Error);
        Assert.Equal(offset, r.Damage.Offset);
    }

    [Fact]
    public void ReleaseGivesBackTheChunksStillHeldButNotOneHandedOut()
    {
        using var reader = TraceReader.Open(new MemoryStream(Ticker.Value));
        var replay = new TraceReplayer(reader);
        Assert.Equal(StopKind.EndOfTrace, replay.Step(new StepConstraints()).Kind);
        var chunks = replay.Chunks;
        var handedOut = Assert.IsType<ChunkEvents>(chunks.Get(reader.Index.Count - 1));
        ulong icount = handedOut.IcountAt(0);
        long givenBack = chunks.ChunksGivenBack;
        chunks.Release();
        // The replay's last chunks were still held: their buffers go back now, all but the one handed out, which still reads.
        Assert.True(chunks.ChunksGivenBack > givenBack);
        Assert.Equal(icount, handedOut.IcountAt(0));
        // Nothing may read through the cache afterwards (its cursors would compare with arrays another chunk now fills).
        Assert.Throws<ObjectDisposedException>(() => chunks.Get(0));
        Assert.Throws<ObjectDisposedException>(() => chunks.InputsIn(0));
    }
}
