using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Trace;
using Replayvisor.Replay.Diff;

namespace Replayvisor.Replay.Tests;

/// <summary>Exception events name the trap handler they were delivered to (docs/trace-format.md, exception-handlers).</summary>
public class ExceptionHandlerTests
{
    private static readonly Lazy<byte[]> Traps = new(() => Recordings.Record("traps", true).Trace);

    [Fact]
    public void EveryExceptionNamesTheTrapTableEntryOfItsVector()
    {
        // guests/lib/entry.S: the guest's trap table points vector n at trap_stubs + 16n.
        var symbols = GuestSymbols.FromImage(Guests.Image("traps", true));
        using var reader = TraceReader.Open(new MemoryStream(Traps.Value));
        Assert.Equal("true", reader.Header.GetOption(RunOptionKeys.ExceptionHandlers));
        var exceptions = reader.ReadEvents().OfType<ExceptionEvent>().ToList();
        Assert.True(exceptions.Select(x => x.Vector).Distinct().Count() > 8, string.Join(", ", exceptions.Select(x => x.Vector)));
        Assert.All(exceptions, x => Assert.Equal(x.Vector == 0 ? "trap_stubs" : $"trap_stubs+0x{16 * x.Vector:x}", symbols.Name(x.Handler)));
    }

    [Fact]
    public void TheDiffNamesTheHandlerAndReplayChecksIt()
    {
        using (var reader = TraceReader.Open(new MemoryStream(Traps.Value)))
        {
            var events = DiffEvents.From(reader.ReadEvents(), GuestSymbols.FromImage(Guests.Image("traps", true)));
            var exceptions = events.Where(e => e.Kind == DiffEvents.Exception).ToList();
            Assert.NotEmpty(exceptions);
            Assert.All(exceptions, x => Assert.EndsWith(" to trap_stubs", x.Text));
        }
        Assert.Null(Recordings.Replay(Traps.Value).Divergence);
        ExceptionEvent? target = null;
        byte[] bad = Recordings.Rewrite(Traps.Value, e =>
        {
            if (target == null && e is ExceptionEvent x) { target = x; return x with { Handler = x.Handler + 16 }; }
            return e;
        });
        var r = Recordings.Replay(bad);
        Assert.NotNull(r.Divergence);
        Assert.Equal(target!.Icount, r.Divergence!.Icount);
    }
}
