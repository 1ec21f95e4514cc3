using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Trace;
using Replayvisor.Replay.Diff;

namespace Replayvisor.Replay.Tests;

/// <summary>
/// Exception events name the trap handler they were delivered to (docs/trace-format.md,
/// exception-handlers), and the diff attributes the iret that returns from them to the code that
/// jumped to the iret stub rather than to the hypercall page.
/// </summary>
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

    [Fact]
    public void TheDiffAttributesIretToTheFunctionThatJumpsToItsStub()
    {
        // guests/lib/entry.S: trap_return ends with `jmp hypercall_page + 23 * 32`; nothing else jumps there.
        Assert.Equal("trap_return", Engine.Boot.IretJumpers.Of(Guests.Image("traps", true), GuestSymbols.FromImage(Guests.Image("traps", true))));
        var side = new DiffSide("traps.rvt", TraceReader.Open(new MemoryStream(Traps.Value)));
        var irets = side.Events.Where(e => e.Hypercall == "iret").ToList();
        Assert.True(irets.Count > 10, $"{irets.Count} irets");
        Assert.All(irets, e => Assert.Equal("trap_return", e.Function));
        // Other hypercalls keep their callers.
        Assert.DoesNotContain(side.Events, e => e.Kind == DiffEvents.Hypercall && e.Function == "hypercall_page");
    }
}
