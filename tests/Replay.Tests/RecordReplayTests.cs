using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Trace;
using Replayvisor.Record;
using Replayvisor.Engine.Time;
using Replayvisor.Engine.Session;

namespace Replayvisor.Replay.Tests;

/// <summary>Record → replay is bit-exact for every guest, under the virtual clock, the host clock and chaos.</summary>
public class RecordReplayTests
{
    public static IEnumerable<object[]> AllGuests() => Guests.All();

    private static void AssertBitExact(Recordings.Recorded rec, string what)
    {
        Assert.True(rec.Result.Exit.Kind == MachineExitKind.PoweredOff, $"{what}: recording ended {rec.Result.Exit}\n{rec.Console}");
        var r = Recordings.Replay(rec.Trace);
        Assert.True(r.Divergence == null, $"{what}: {r.Report}");
        Assert.Equal(rec.Result.Exit.Icount, r.Exit.Icount);
        Assert.Equal(MachineExitKind.PoweredOff, r.Exit.Kind);
        Assert.True(r.EventsVerified > 0);
    }

    [Theory]
    [MemberData(nameof(AllGuests))]
    public void VirtualClock(string name, bool pae) => AssertBitExact(Recordings.Record(name, pae), $"{name} pae={pae}");

    [Theory]
    [InlineData("events", false)]
    [InlineData("sched", true)]
    [InlineData("failsafe", false)]
    [InlineData("pagetables", true)]
    [InlineData("echo", false)]
    [InlineData("traps", true)]
    public void HostClock(string name, bool pae)
    {
        var rec = Recordings.Record(name, pae, ClockKind.Host);
        using var reader = TraceReader.Open(new MemoryStream(rec.Trace));
        Assert.Contains(reader.ReadEvents(), e => e is TimeEvent { Kind: TimeKind.SystemTimeNs });
        AssertBitExact(rec, $"{name} host clock");
    }

    [Theory]
    [InlineData("sched", true, 1)]
    [InlineData("sched", false, 2)]
    [InlineData("events", true, 3)]
    [InlineData("echo", true, 4)]
    [InlineData("multicall", false, 5)]
    public void Chaos(string name, bool pae, int seed)
    {
        var rec = Recordings.Record(name, pae, chaos: seed);
        using var reader = TraceReader.Open(new MemoryStream(rec.Trace));
        Assert.Contains(reader.ReadEvents(), e => e is AsyncEvent { Kind: AsyncKind.ChaosDelay });
        AssertBitExact(rec, $"{name} chaos {seed}");
    }

    [Fact]
    public void ChaosAndHostClockTogether() => AssertBitExact(Recordings.Record("sched", true, ClockKind.Host, chaos: 7), "sched host+chaos");

    /// <summary>
    /// Under the host clock, time values are taken inside CPU runs; taking one can uncover console
    /// input due before the run's planned stop, and the replay must still stop and hand it over there.
    /// </summary>
    [Theory]
    [InlineData(3)]
    [InlineData(8)]
    public void ConsoleInputAfterClockReadsInsideARun(int seed)
    {
        var rec = Recordings.Record("sched", true, ClockKind.Host, chaos: seed, stdin: "line 1\nline 2\n"u8.ToArray());
        using var reader = TraceReader.Open(new MemoryStream(rec.Trace));
        var events = reader.ReadEvents().ToList();
        int input = events.FindIndex(e => e is ConsoleInputEvent);
        Assert.True(input > 0, "the sched guest took no console input");
        Assert.Contains(events.Take(input), e => e is TimeEvent { Kind: TimeKind.SystemTimeNs });
        AssertBitExact(rec, $"sched host+chaos {seed} with console input");
    }

    [Fact]
    public void ChaosSeedsChangeTheRun()
    {
        static ulong[] Upcalls(byte[] trace)
        {
            using var reader = TraceReader.Open(new MemoryStream(trace));
            return reader.ReadEvents().OfType<UpcallEvent>().Select(u => u.Icount).ToArray();
        }
        var plain = Upcalls(Recordings.Record("sched", true).Trace);
        var a = Upcalls(Recordings.Record("sched", true, chaos: 11).Trace);
        var b = Upcalls(Recordings.Record("sched", true, chaos: 12).Trace);
        Assert.NotEqual(plain, a);
        Assert.NotEqual(a, b);
    }

    /// <summary>Checkpoint counts that coincide with timer deadlines (10 ms = 10,000,000 instructions) must not reorder events.</summary>
    [Theory]
    [InlineData(10_000_000ul)]
    [InlineData(5_000_000ul)]
    [InlineData(333_333ul)]
    [InlineData(0ul)]
    public void AnyCheckpointIntervalReplays(ulong interval) =>
        AssertBitExact(Recordings.Record("sched", true, checkpointInterval: interval), $"sched interval {interval}");

    [Fact]
    public void ACheckpointIsTakenAtEveryMultipleOfTheInterval()
    {
        var rec = Recordings.Record("sched", false, checkpointInterval: 2_000_000);
        using var reader = TraceReader.Open(new MemoryStream(rec.Trace));
        var at = reader.ReadEvents().OfType<CheckpointEvent>().Select(c => c.Icount).ToArray();
        var expected = Enumerable.Range(0, (int)(rec.Result.Exit.Icount / 2_000_000) + 1).Select(i => (ulong)i * 2_000_000).ToArray();
        Assert.Equal(expected, at);
    }

    [Fact]
    public void RecordingIsDeterministicUnderTheVirtualClock()
    {
        var a = Recordings.Record("events", false);
        var b = Recordings.Record("events", false);
        Assert.Equal(a.Trace, b.Trace);
    }

    [Fact]
    public void ReplayPrintsTheConsoleAgain()
    {
        var rec = Recordings.Record("hello", false);
        var console = new MemoryStream();
        var r = Recordings.Replay(rec.Trace, console: console);
        Assert.Null(r.Divergence);
        Assert.Equal(rec.Console, System.Text.Encoding.ASCII.GetString(console.ToArray()));
    }

    [Fact]
    public void ReplayToAnInstructionCountStopsThere()
    {
        var rec = Recordings.Record("sched", false);
        ulong to = rec.Result.Exit.Icount / 2;
        var r = Recordings.Replay(rec.Trace, to);
        Assert.Null(r.Divergence);
        Assert.Equal(to, r.Exit.Icount);
    }

    /// <summary>
    /// A replay stopped at the count of a recorded event is bit-exact there: events the recording made at
    /// that count after the stop (a timer's expiry and its upcall, the checkpoint at 0) lie beyond it.
    /// </summary>
    [Fact]
    public void ReplayToTheCountOfAnyRecordedEventStopsThereWithoutDivergence()
    {
        var rec = Recordings.Record("sched", true, chaos: 7);
        using var reader = TraceReader.Open(new MemoryStream(rec.Trace));
        var counts = reader.ReadEvents().Where(e => e is AsyncEvent or UpcallEvent or CheckpointEvent).Select(e => e.Icount).Distinct().Take(12).ToList();
        Assert.Contains(0ul, counts);
        Assert.True(counts.Count > 4, $"only {counts.Count} counts");
        var wrong = new List<string>();
        foreach (ulong to in counts)
        {
            var r = Recordings.Replay(rec.Trace, to);
            if (r.Divergence != null || r.Exit.Icount != to) wrong.Add($"--to {to}: stopped at {r.Exit.Icount}: {r.Report}");
        }
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
    }

    [Fact]
    public void InstructionLimitIsReplayed()
    {
        var rec = Recordings.Record("sched", true, maxInstructions: 5_000_000);
        Assert.Equal(MachineExitKind.InstructionLimit, rec.Result.Exit.Kind);
        var r = Recordings.Replay(rec.Trace);
        Assert.Null(r.Divergence);
        Assert.Equal(MachineExitKind.InstructionLimit, r.Exit.Kind);
        Assert.Equal(5_000_000ul, r.Exit.Icount);
    }
}
