using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Trace;
using Replayvisor.Record;

namespace Replayvisor.Replay.Tests;

/// <summary>Format 3's compact events chunks (docs/trace-format.md): a timer-driven guest costs a few bytes per event on disk.</summary>
public class TraceDensityTests
{
    [Fact]
    public void TheTickerGuestCostsAtMostFourBytesPerEventOnDisk()
    {
        var trace = new MemoryStream();
        using (var s = new LiveSession(new LiveRequest
        {
            Kernel = Guests.Image("ticker", pae: true),
            ImageName = "ticker-pae.elf",
            Machine = new XenMachineOptions { MemoryMiB = 32 },
            CheckpointInterval = 10_000_000,
            Trace = trace,
            ConsoleOutput = Stream.Null,
        }))
            Assert.Equal(MachineExitKind.PoweredOff, s.Run().Exit.Kind);
        byte[] bytes = trace.ToArray();
        using var reader = TraceReader.Open(new MemoryStream(bytes));
        long events = reader.Stats.EventCount;
        // 20,000 rounds of set_timer_op, SCHEDOP_block, the timer expiry and its upcall (guests/ticker).
        Assert.True(events >= 80_000, $"{events} events");
        double perEvent = (double)bytes.Length / events;
        Assert.True(perEvent <= 4, $"{perEvent:F2} bytes per event ({bytes.Length} bytes, {events} events)");
        var r = Recordings.Replay(bytes);
        Assert.True(r.Divergence == null, r.Report);
    }
}
