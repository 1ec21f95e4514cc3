using Replayvisor.Engine.Inputs;

namespace Replayvisor.Engine.Tests.Inputs;

/// <summary>
/// The checkpoint schedule answers the run loop's "when is the next checkpoint" without dividing at
/// every stop; its answers are those of the division (the next multiple of the interval, or the
/// count itself when a checkpoint is due there and not yet taken), whatever order the counts come in.
/// </summary>
public class CheckpointScheduleTests
{
    private static ulong ByDivision(ulong interval, ulong icount, ulong last) =>
        icount % interval == 0 && last != icount ? icount : (icount / interval + 1) * interval;

    [Theory]
    [InlineData(1ul)]
    [InlineData(7ul)]
    [InlineData(1000ul)]
    [InlineData(10_000_000ul)]
    [InlineData(ulong.MaxValue / 3)]
    [InlineData(ulong.MaxValue)]
    public void NextPollIsTheDivisionsAnswerForCountsInAnyOrder(ulong interval)
    {
        var rng = new Random((int)(interval % 100_003));
        var schedule = new Checkpoints(interval, _ => { });
        ulong icount = 0;
        for (int i = 0; i < 20_000; i++)
        {
            icount = rng.Next(10) switch
            {
                0 => (ulong)rng.NextInt64(), // anywhere, backwards included (a replay that seeks)
                1 => ulong.MaxValue - (ulong)rng.Next(3 * (int)Math.Min(interval, 1000)), // near the wrap
                2 => icount / interval * interval, // exactly on a multiple
                3 => icount / interval * interval + interval - 1, // just below the next one
                _ => ulong.MaxValue - icount < 50_000 ? 0 : icount + (ulong)rng.Next(50_000), // runs forwards
            };
            if (rng.Next(4) == 0) schedule.Last = rng.Next(2) == 0 ? icount : icount / interval * interval; // a checkpoint taken here, or at the last multiple
            Assert.Equal(ByDivision(interval, icount, schedule.Last), schedule.NextPoll(icount));
        }
    }

    [Fact]
    public void WithoutAnIntervalThereAreNoCheckpoints()
    {
        var schedule = new Checkpoints(0, _ => { });
        Assert.Equal(ulong.MaxValue, schedule.NextPoll(0));
        Assert.Equal(ulong.MaxValue, schedule.NextPoll(123));
    }
}
