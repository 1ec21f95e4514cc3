using Replayvisor.Engine.Trace;

namespace Replayvisor.Replay.Tests;

/// <summary>
/// The replay compares produced hypercalls and upcalls with the trace's decoded columns in place
/// (ColumnCursor.TakeHypercall/TakeUpcall through TraceObserver.Expected; ChunkEvents.HypercallEquals/UpcallEquals). A change
/// to any one field of one recorded event, at the start, middle or end of a chunk, must still be
/// reported as a divergence at that event, with the recorded (changed) and produced events: a
/// comparison that skipped a field would let the changed event pass.
/// </summary>
public class ColumnTamperTests
{
    /// <summary>A ticker recording (one hypercall or upcall every ~62 instructions) rewritten into 64-event chunks.</summary>
    private static readonly Lazy<(byte[] Trace, TraceEvent[] Events, int[] ChunkStarts)> Ticker = new(() =>
    {
        byte[] trace = Recordings.Rewrite(Recordings.Record("ticker", true).Trace, e => e);
        using var reader = TraceReader.Open(new MemoryStream(trace));
        var starts = new List<int>();
        int at = 0;
        foreach (var chunk in reader.Index)
        {
            starts.Add(at);
            at += chunk.EventCount;
        }
        return (trace, reader.ReadEvents().ToArray(), starts.ToArray());
    });

    private static HypercallEvent? Hypercall(TraceEvent e, int args) =>
        e is HypercallEvent { Multicall.Count: 0, Memory.Count: 0 } h && h.Args.Count >= args ? h : null;

    private static UpcallEvent? Upcall(TraceEvent e) => e as UpcallEvent;

    private static uint[] Changed(EquatableArray<uint> values, int index, uint xor)
    {
        var copy = values.ToArray();
        copy[index] ^= xor;
        return copy;
    }

    /// <summary>Each change: which events it applies to and the changed event.</summary>
    private static readonly Dictionary<string, Func<TraceEvent, TraceEvent?>> Changes = new()
    {
        ["hypercall icount"] = e => Hypercall(e, 0) is { } h ? h with { Icount = h.Icount + 1 } : null,
        ["hypercall number"] = e => Hypercall(e, 0) is { } h ? h with { Number = h.Number ^ 1 } : null,
        ["hypercall first argument"] = e => Hypercall(e, 1) is { } h ? h with { Args = Changed(h.Args, 0, 0x10) } : null,
        ["hypercall last argument"] = e => Hypercall(e, 2) is { } h ? h with { Args = Changed(h.Args, h.Args.Count - 1, 1) } : null,
        ["hypercall missing argument"] = e => Hypercall(e, 1) is { } h ? h with { Args = h.Args.AsSpan()[..^1].ToArray() } : null,
        ["hypercall result"] = e => Hypercall(e, 0) is { } h ? h with { Result = h.Result + 1 } : null,
        ["hypercall output digest"] = e => Hypercall(e, 0) is { } h ? h with { OutputDigest = h.OutputDigest ^ 0x100 } : null,
        ["hypercall site"] = e => Hypercall(e, 0) is { } h ? h with { Site = h.Site ^ 4 } : null,
        ["hypercall vcpu"] = e => Hypercall(e, 0) is { } h ? h with { Vcpu = h.Vcpu ^ 1 } : null,
        ["upcall icount"] = e => Upcall(e) is { } u ? u with { Icount = u.Icount + 1 } : null,
        ["upcall vcpu"] = e => Upcall(e) is { } u ? u with { Vcpu = u.Vcpu ^ 1 } : null,
        ["upcall port"] = e => Upcall(e) is { Ports.Count: > 0 } u ? u with { Ports = Changed(u.Ports, 0, 2) } : null,
        ["upcall extra port"] = e => Upcall(e) is { } u ? u with { Ports = [.. u.Ports.AsSpan(), 7u] } : null,
        ["upcall interrupted code"] = e => Upcall(e) is { } u ? u with { Eip = u.Eip ^ 1 } : null,
        ["upcall handler"] = e => Upcall(e) is { } u ? u with { Handler = u.Handler ^ 0x10 } : null,
    };

    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        string[] places = ["first", "middle", "last"];
        int i = 0;
        foreach (var change in Changes.Keys) data.Add(change, places[i++ % places.Length]);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void AChangedFieldIsReportedAtItsEvent(string change, string place)
    {
        var (trace, events, starts) = Ticker.Value;
        var apply = Changes[change];
        // The first chunk from the 5th on whose event at that place the change applies to.
        int target = -1;
        for (int k = 4; k < starts.Length - 1 && target < 0; k++)
        {
            int first = starts[k], last = starts[k + 1] - 1;
            int at = place switch { "first" => first, "last" => last, _ => (first + last) / 2 };
            if (apply(events[at]) != null) target = at;
        }
        Assert.True(target >= 0, $"no event for {change} at the {place} of a chunk");
        var original = events[target];
        var changed = apply(original)!;
        int seen = 0;
        byte[] bad = Recordings.Rewrite(trace, e => seen++ == target ? changed : e);

        var r = Recordings.Replay(bad);

        Assert.NotNull(r.Divergence);
        Assert.Equal(original.Icount, r.Divergence!.Icount);
        Assert.Equal(changed, r.Divergence.Expected);
        Assert.Equal(original, r.Divergence.Actual);
    }

    [Fact]
    public void TheUnchangedRewriteReplaysWithoutDivergence()
    {
        var (trace, events, _) = Ticker.Value;
        var r = Recordings.Replay(trace);
        Assert.Null(r.Divergence);
        Assert.Equal(events.Length, r.EventsVerified);
    }
}
