using Replayvisor.Engine.Inputs;
using Replayvisor.Engine.Trace;

namespace Replayvisor.Engine.Tests.Time;

/// <summary>
/// The host clock's (tsc, system time) pair for vcpu_time_info comes from one host read, so a
/// guest's pvclock time never runs ahead of the system time a later hypercall sees.
/// </summary>
public class RecordingClockTests
{
    /// <summary>A host clock that advances 1,000 ns on every read.</summary>
    private sealed class SteppingHost : IHostTime
    {
        private ulong _ns;
        public ulong MonotonicNs() => _ns += 1_000;
        public (uint Sec, uint Nsec) UtcNow() => (1, 2);
        public bool Wait(ulong ns) => false;
    }

    [Fact]
    public void ThePublishedPairIsOneInstantLoggedAsTheTwoReadsItReplaces()
    {
        var log = new List<TraceEvent>();
        var clock = new RecordingClock(new SteppingHost(), log.Add);
        log.Clear();
        var (tsc, ns) = clock.TscAndSystemTime(500);
        Assert.Equal(tsc, ns);
        Assert.Equal([new TimeEvent(500, TimeKind.Tsc, tsc), new TimeEvent(500, TimeKind.SystemTimeNs, ns)], log);
        // Separate reads still read the host each time.
        Assert.True(clock.SystemTimeNs(600) > ns);
    }

    [Fact]
    public void ReplayHandsBackThePairFromTheTwoLoggedValues()
    {
        var queue = new InputQueue([new TimeEvent(500, TimeKind.Tsc, 7_000), new TimeEvent(500, TimeKind.SystemTimeNs, 7_000)]);
        string? diverged = null;
        var clock = new ReplayingClock(queue, m => diverged = m);
        Assert.Equal((7_000ul, 7_000ul), ((Engine.Time.IGuestClock)clock).TscAndSystemTime(500));
        Assert.Null(diverged);
    }
}
