using Replayvisor.Engine.Trace;
using Replayvisor.Replay.Streaming;

namespace Replayvisor.Replay.Tests;

/// <summary>
/// The verifier's columns (<see cref="Verifier.Columns"/>, where the replay's observer matches plain
/// hypercalls directly) take an event only while the comparison is on: not once a divergence is
/// known (later events are not verified: the report and the count of verified events stay those of
/// the divergence), and not while <see cref="Verifier.PlainAllowed"/> is off (every event must then
/// come to <see cref="Verifier.Observe"/>).
/// </summary>
public class VerifierColumnsTests
{
    private static readonly Lazy<byte[]> Ticker = new(() => Recordings.Record("ticker", true).Trace);

    /// <summary>A verifier over the ticker trace with every event before its first plain hypercall matched, and that hypercall.</summary>
    private static (Verifier Verifier, HypercallEvent Next) AtAPlainHypercall(TraceReader reader)
    {
        var verifier = new Verifier(new ChunkCache(reader));
        while (verifier.NextExpected is { } e && e is not HypercallEvent { Multicall.Count: 0, Memory.Count: 0 })
            Assert.True(verifier.Observe(e));
        return (verifier, Assert.IsType<HypercallEvent>(verifier.NextExpected));
    }

    private static bool Take(Verifier v, HypercallEvent h) =>
        v.Columns.TakeHypercall(h.Icount, h.Vcpu, h.Number, h.Args.AsSpan(), h.Result, h.OutputDigest, h.Site);

    [Fact]
    public void ARecordedHypercallIsTakenWhileTheComparisonIsOn()
    {
        using var reader = TraceReader.Open(new MemoryStream(Ticker.Value));
        var (verifier, next) = AtAPlainHypercall(reader);
        long matched = verifier.Matched;
        Assert.True(Take(verifier, next));
        Assert.Equal(matched + 1, verifier.Matched);
        Assert.NotEqual(next, verifier.NextExpected);
    }

    [Fact]
    public void NothingIsTakenOnceADivergenceIsKnown()
    {
        using var reader = TraceReader.Open(new MemoryStream(Ticker.Value));
        var (verifier, next) = AtAPlainHypercall(reader);
        long matched = verifier.Matched;
        verifier.Fail(next.Icount, "a divergence found outside event comparison");
        Assert.False(Take(verifier, next));
        Assert.Equal(matched, verifier.Matched);
        Assert.Equal(next, verifier.NextExpected);
    }

    [Fact]
    public void NothingIsTakenWhilePlainMatchingIsOffAndTakingResumesAfter()
    {
        using var reader = TraceReader.Open(new MemoryStream(Ticker.Value));
        var (verifier, next) = AtAPlainHypercall(reader);
        verifier.PlainAllowed = false;
        Assert.False(Take(verifier, next));
        verifier.PlainAllowed = true;
        Assert.True(Take(verifier, next));
    }
}
