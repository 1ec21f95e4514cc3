using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Session;
using Replayvisor.Engine.Trace;
using Replayvisor.Record;

namespace Replayvisor.Replay.Tests;

/// <summary>
/// A recording stopped on request (Ctrl-C, SIGTERM) ends at one of the run loop's stop sites, and
/// its replay stops at the very same one, so it replays completely (docs/record-replay.md "Stop sites").
/// The stop is requested after the recorder has been asked a given number of times, which puts
/// it everywhere: at the top of loop iterations, at polls, in a blocked vCPU's idle loop.
/// </summary>
public class StopSiteTests
{
    /// <summary>The recorder's inputs, with a stop requested from the (n+1)th time the machine asks.</summary>
    private sealed class StopAfterAsks(IRunInputs inner, int asks) : IRunInputs
    {
        private int _asked;
        public bool StopRequested => ++_asked > asks || inner.StopRequested;
        public ulong NextPoll(ulong icount) => inner.NextPoll(icount);
        public bool Poll(XenMachine machine, bool blocked) => inner.Poll(machine, blocked);
        public bool WaitForInput(XenMachine machine) => inner.WaitForInput(machine);
        public ulong TimerDelay(ulong icount) => inner.TimerDelay(icount);
    }

    private static (byte[] Trace, MachineExit Exit) RecordStopped(string guest, bool pae, ClockKind clock, int? chaos, int asks)
    {
        var trace = new MemoryStream();
        using var s = new LiveSession(new LiveRequest
        {
            Kernel = Guests.Image(guest, pae),
            ImageName = guest + ".elf",
            Machine = new XenMachineOptions { MemoryMiB = 16 },
            Clock = clock,
            ChaosSeed = chaos,
            CheckpointInterval = 300_000,
            Trace = trace,
            ConsoleOutput = Stream.Null,
            Stdin = guest == "echo" ? new MemoryStream(Guests.EchoInput) : null,
            WrapInputs = inputs => new StopAfterAsks(inputs, asks),
        });
        var r = s.Run();
        return (trace.ToArray(), r.Exit);
    }

    [Theory]
    [InlineData("sched", true, ClockKind.Virtual, null)]
    [InlineData("sched", false, ClockKind.Host, 3)]
    [InlineData("echo", false, ClockKind.Virtual, null)]
    [InlineData("events", true, ClockKind.Virtual, 2)]
    public void AStoppedRecordingReplaysToTheSameStopSite(string guest, bool pae, ClockKind clock, int? chaos)
    {
        var sites = new List<int>();
        foreach (int asks in Enumerable.Range(0, 12).Concat([13, 21, 34, 55, 89, 144, 233, 377]))
        {
            var (trace, exit) = RecordStopped(guest, pae, clock, chaos, asks);
            if (exit.Kind != MachineExitKind.Stopped) continue; // the guest finished before that many asks
            sites.Add(exit.StopSite);
            var r = Recordings.Replay(trace);
            Assert.True(r.Divergence == null, $"{guest}, stopped after {asks} asks at {exit.Icount} site {exit.StopSite}: {r.Report}");
            Assert.Equal(MachineExitKind.Stopped, r.Exit.Kind);
            Assert.Equal(exit.Icount, r.Exit.Icount);
            Assert.Equal(exit.StopSite, r.Exit.StopSite);
            Assert.False(r.PrefixOnly);
        }
        Assert.True(sites.Count >= 2, $"{guest}: only {sites.Count} stopped recordings");
        // Not only the first site of a count: stops inside loop iterations at one count are covered too.
        Assert.Contains(sites, s => s > 0);
    }
}
