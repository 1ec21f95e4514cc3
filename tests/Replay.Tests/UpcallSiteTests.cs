using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Trace;
using Replayvisor.Replay.Diff;

namespace Replayvisor.Replay.Tests;

/// <summary>Upcall events name the guest code they interrupted and the callback they entered (docs/trace-format.md, upcall-sites).</summary>
public class UpcallSiteTests
{
    private static readonly Lazy<byte[]> Ticker = new(() => Recordings.Record("ticker", true).Trace);

    [Fact]
    public void AnUpcallOnTheWayOutOfAHypercallIsAttributedToTheStubsCallerAndEntersTheCallback()
    {
        var symbols = GuestSymbols.FromImage(Guests.Image("ticker", true));
        using var reader = TraceReader.Open(new MemoryStream(Ticker.Value));
        Assert.Equal("true", reader.Header.GetOption(RunOptionKeys.UpcallSites));
        var upcalls = reader.ReadEvents().OfType<UpcallEvent>().ToList();
        Assert.True(upcalls.Count > 1000, $"{upcalls.Count} upcalls");
        Assert.All(upcalls, u => Assert.Equal("hypervisor_callback", symbols.FunctionOf(u.Handler)));
        // ticker blocks in SCHEDOP_block until the timer's upcall: delivered as the hypercall returns,
        // so it interrupted the stub, and the event names the function that called the stub.
        Assert.DoesNotContain(upcalls, u => symbols.FunctionOf(u.Eip) is "hypercall_page" or "");
        Assert.True(upcalls.Count(u => symbols.FunctionOf(u.Eip) == "block") > upcalls.Count / 2,
            string.Join(", ", upcalls.GroupBy(u => symbols.FunctionOf(u.Eip)).Select(g => $"{g.Key} {g.Count()}")));
    }

    [Fact]
    public void TheDiffAttributesEachUpcallToTheFunctionItInterruptedAndNamesTheCallback()
    {
        using var reader = TraceReader.Open(new MemoryStream(Ticker.Value));
        var events = DiffEvents.From(reader.ReadEvents(), GuestSymbols.FromImage(Guests.Image("ticker", true)));
        var upcalls = events.Where(e => e.Kind == DiffEvents.Upcall).ToList();
        Assert.NotEmpty(upcalls);
        Assert.All(upcalls, u => Assert.NotEqual("", u.Function));
        Assert.All(upcalls, u => Assert.EndsWith(" to hypervisor_callback", u.Text));
    }

    [Fact]
    public void ReplayChecksTheSitesAndAWrongOneIsADivergence()
    {
        Assert.Null(Recordings.Replay(Ticker.Value).Divergence);
        UpcallEvent? target = null;
        byte[] bad = Recordings.Rewrite(Ticker.Value, e =>
        {
            if (target == null && e is UpcallEvent u) { target = u; return u with { Eip = u.Eip + 1 }; }
            return e;
        });
        var r = Recordings.Replay(bad);
        Assert.NotNull(r.Divergence);
        Assert.Equal(target!.Icount, r.Divergence!.Icount);
    }
}
