using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Trace;

namespace Replayvisor.Replay.Diff;

/// <summary>One side of a comparison: the trace, its events and its guest's symbols.</summary>
public sealed class DiffSide
{
    public DiffSide(string path, TraceReader reader)
    {
        Path = path;
        Reader = reader;
        Raw = reader.ReadEvents().ToList();
        Symbols = GuestSymbols.FromImage(reader.GuestImage.Span);
        IretJumpers = Engine.Boot.IretJumpers.Of(reader.GuestImage.Span, Symbols);
        Events = DiffEvents.From(Raw, Symbols, IretJumpers);
        FinalIcount = reader.Summary?.FinalIcount ?? (Raw.Count > 0 ? Raw[^1].Icount : 0);
        Exit = reader.Summary is { } s ? s.Exit.ToString() : "incomplete";
    }

    public string Path { get; }
    public TraceReader Reader { get; }
    public IReadOnlyList<TraceEvent> Raw { get; }
    public GuestSymbols Symbols { get; }
    /// <summary>The function(s) that jump to the iret stub: iret events are attributed to them.</summary>
    public string IretJumpers { get; }
    public IReadOnlyList<DiffEvent> Events { get; }
    public ulong FinalIcount { get; }
    public string Exit { get; }
}

/// <summary>The first recorded event where two runs of one guest image part ways (checkpoints and hypercall data bytes aside).</summary>
public sealed record EventDivergence(int Index, ulong Icount, TraceEvent? A, TraceEvent? B);

/// <summary>Counts of one kind (or one hypercall) in each run.</summary>
public sealed record DiffCount(string Name, int A, int B);

/// <summary>Everything `replayvisor diff` reports.</summary>
public sealed record TraceDiffResult
{
    public required DiffSide A { get; init; }
    public required DiffSide B { get; init; }
    public required bool SameImage { get; init; }
    public required bool Identical { get; init; }
    public required IReadOnlyList<AlignedLine> Lines { get; init; }
    /// <summary>Index into <see cref="Lines"/> of the first line not in both runs (-1 when the aligned events agree).</summary>
    public required int FirstDifference { get; init; }
    public required IReadOnlyList<DiffHunk> Hunks { get; init; }
    public required IReadOnlyList<DiffHunk> ConsoleHunks { get; init; }
    public required IReadOnlyList<DiffCount> ByKind { get; init; }
    public required IReadOnlyList<DiffCount> ByHypercall { get; init; }
    /// <summary>Same image only: the first differing recorded event.</summary>
    public EventDivergence? FirstEvent { get; init; }
    /// <summary>Same image only, when asked: the first instruction whose architectural state differs.</summary>
    public PinpointResult? Pinpoint { get; init; }
    public string? PinpointError { get; init; }
}

/// <summary>
/// Compares two traces (docs/diff.md): the aligned event streams of both runs, with counts and the
/// console by line; for one guest image also the first differing recorded event and, by
/// re-executing both runs, the first instruction whose state differs.
/// </summary>
public static class TraceDiff
{
    public static TraceDiffResult Compare(DiffSide a, DiffSide b, int context, bool pinpoint, PinpointOptions? options = null)
    {
        bool sameImage = a.Reader.Header.GuestImageSha256 == b.Reader.Header.GuestImageSha256;
        var lines = EventAlignment.Align(a.Events, b.Events);
        int first = EventAlignment.FirstDifference(lines);
        var consoleA = a.Events.Where(e => e.Kind == DiffEvents.Console).ToList();
        var consoleB = b.Events.Where(e => e.Kind == DiffEvents.Console).ToList();
        EventDivergence? firstEvent = sameImage ? FirstDivergentEvent(a.Raw, b.Raw) : null;
        bool identical = first < 0 && a.FinalIcount == b.FinalIcount && a.Exit == b.Exit && (!sameImage || firstEvent == null);
        PinpointResult? where = null;
        string? error = null;
        if (sameImage && !identical && pinpoint)
        {
            try { where = Pinpointer.Find(a, b, options ?? new()); }
            catch (PinpointException e) { error = e.Message; }
        }
        return new TraceDiffResult
        {
            A = a, B = b, SameImage = sameImage, Identical = identical,
            Lines = lines, FirstDifference = first, Hunks = EventAlignment.Hunks(lines, context),
            ConsoleHunks = EventAlignment.Hunks(EventAlignment.Align(consoleA, consoleB), context),
            ByKind = Counts(a.Events, b.Events, e => e.Kind),
            ByHypercall = Counts(a.Events.Where(e => e.Hypercall != null), b.Events.Where(e => e.Hypercall != null), e => e.Hypercall!),
            FirstEvent = firstEvent, Pinpoint = where, PinpointError = error,
        };
    }

    /// <summary>
    /// Walks both recordings in step, ignoring checkpoints (their interval is a recording option),
    /// hypercall data bytes (the digest stays compared) and upcall sites when only one recording
    /// has them (an older trace); null when they agree to the end.
    /// </summary>
    public static EventDivergence? FirstDivergentEvent(IReadOnlyList<TraceEvent> a, IReadOnlyList<TraceEvent> b)
    {
        bool sites = HasUpcallSites(a) == HasUpcallSites(b);
        var ea = a.Where(e => e is not CheckpointEvent).Select(e => Comparable(e, sites)).ToList();
        var eb = b.Where(e => e is not CheckpointEvent).Select(e => Comparable(e, sites)).ToList();
        int n = Math.Min(ea.Count, eb.Count);
        EventDivergence? found = null;
        for (int i = 0; i < n && found == null; i++)
            if (!ea[i].Equals(eb[i])) found = new EventDivergence(i, Math.Min(ea[i].Icount, eb[i].Icount), ea[i], eb[i]);
        if (found == null && ea.Count != eb.Count)
        {
            var extra = ea.Count > n ? ea[n] : eb[n];
            found = new EventDivergence(n, extra.Icount, ea.Count > n ? ea[n] : null, eb.Count > n ? eb[n] : null);
        }
        // A checkpoint both recordings took at one count with different state hashes is a divergence too (a state change no event shows yet).
        var hashB = b.OfType<CheckpointEvent>().ToDictionary(c => c.Icount, c => c);
        foreach (var c in a.OfType<CheckpointEvent>())
        {
            if (found != null && c.Icount >= found.Icount) break;
            if (hashB.TryGetValue(c.Icount, out var other) && other.StateHash != c.StateHash)
                return new EventDivergence(-1, c.Icount, c, other);
        }
        return found;
    }

    private static TraceEvent Comparable(TraceEvent e, bool sites) => e switch
    {
        HypercallEvent { Memory.Count: > 0 } h => h with { Memory = default },
        UpcallEvent u when !sites => u with { Eip = 0, Handler = 0 },
        _ => e,
    };

    private static bool HasUpcallSites(IReadOnlyList<TraceEvent> events) => events.Any(e => e is UpcallEvent { Handler: not 0 });

    private static List<DiffCount> Counts(IEnumerable<DiffEvent> a, IEnumerable<DiffEvent> b, Func<DiffEvent, string> by)
    {
        var ca = a.GroupBy(by).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        var cb = b.GroupBy(by).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        return ca.Keys.Union(cb.Keys).Order(StringComparer.Ordinal)
            .Select(k => new DiffCount(k, ca.GetValueOrDefault(k), cb.GetValueOrDefault(k))).ToList();
    }
}
