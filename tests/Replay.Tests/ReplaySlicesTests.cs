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
/// inputs is looked through at once); the chunks it decodes are kept for the checks (ChunkCache.InputsIn),
/// so a replay reads each chunk once.
/// </summary>
public class ChunkReadsTests
{
    [Fact]
    public void AReplayWithoutInputsReadsEachChunkOnce()
    {
        var trace = new MemoryStream();
        using (var s = new LiveSession(new LiveRequest
        {
            Kernel = Guests.Image("ticker", pae: true), ImageName = "ticker-pae.elf", Machine = new XenMachineOptions { MemoryMiB = 32 },
            Trace = trace, ConsoleOutput = Stream.Null, // virtual clock: no inputs; chunks of the default size
        }))
            Assert.Equal(MachineExitKind.PoweredOff, s.Run().Exit.Kind);
        using var reader = TraceReader.Open(new MemoryStream(trace.ToArray()));
        Assert.InRange(reader.Index.Count, 3, Streaming.ChunkCache.AheadCapacity);
        var replay = new TraceReplayer(reader);
        Assert.Equal(StopKind.EndOfTrace, replay.Step(new StepConstraints()).Kind);
        Assert.Null(replay.Verifier.First);
        Assert.Equal(reader.Index.Count, replay.Chunks.ChunksRead);
    }
}
