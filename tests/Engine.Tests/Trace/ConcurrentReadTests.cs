using Replayvisor.Engine.Trace;

namespace Replayvisor.Engine.Tests.Trace;

/// <summary>
/// A replay reads chunks ahead on other threads while its own thread reads (Replay/Streaming, ChunkCache):
/// one reader used from several threads at once gives every thread the chunks a lone reader gives.
/// </summary>
public class ConcurrentReadTests
{
    [Fact]
    public void ChunksReadFromSeveralThreadsAtOnceAreTheChunksReadAlone()
    {
        byte[] bytes = TraceSamples.Write(TraceSamples.Many(20_000), options: new TraceWriterOptions { MaxChunkEvents = 500 });
        using var reader = TraceSamples.Open(bytes);
        Assert.True(reader.Index.Count >= 20, $"{reader.Index.Count} chunks");
        var alone = reader.Index.Select(c => reader.ReadChunk(c).ToArray()).ToArray();
        // Four threads each read every chunk several times, in different orders.
        Parallel.For(0, 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, t =>
        {
            for (int round = 0; round < 10; round++)
                for (int k = 0; k < reader.Index.Count; k++)
                {
                    int i = (k * (2 * t + 1) + round) % reader.Index.Count;
                    Assert.Equal(alone[i], reader.ReadChunk(reader.Index[i]).ToArray());
                    Assert.Equal(alone[i].Count(e => e is InputEvent), reader.ReadChunkInputCount(reader.Index[i]));
                }
        });
    }
}
