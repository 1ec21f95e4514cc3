using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Session;
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
        // The recorder's own closing event of a run it ended (RunOutcome.ClosingEvent): its instruction limit, or a stop request.
        if (reader.Complete && Raw.Count > 0 && Raw[^1] is ShutdownEvent last)
            StoppedBy = last.Exit switch
            {
                ExitKind.InstructionLimit => "at its instruction limit",
                ExitKind.Stopped when last.Detail == RunOutcome.InterruptedDetail => "on request (Ctrl-C or SIGTERM)",
                _ => null,
            };
        Held = StoppedBy != null ? Raw.Take(Raw.Count - 1).ToList() : Raw;
        HeldEvents = StoppedBy != null && Events.Count > 0 && Events[^1].Kind == DiffEvents.Shutdown ? Events.Take(Events.Count - 1).ToList() : Events;
        // A recorder killed while the guest was writing a line leaves it without its newline: its last aligned event.
        var lastOutput = Raw.LastOrDefault(e => e is ConsoleOutputEvent or ShutdownEvent);
        UnterminatedLine = !reader.Complete && lastOutput is ConsoleOutputEvent c && c.Bytes.Count > 0 && c.Bytes[^1] != (byte)'\n'
            && Events.Count > 0 && Events[^1].Kind == DiffEvents.Console;
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
    /// <summary>
    /// How the recorder, not the guest, ended the run ("at its instruction limit", "on request (Ctrl-C or SIGTERM)"):
    /// the trace is complete, but the run would have gone on. Null when the guest's run ended by itself.
    /// </summary>
    public string? StoppedBy { get; }
    /// <summary>The run goes on past what the trace holds: its recorder was killed (incomplete) or ended it (<see cref="StoppedBy"/>).</summary>
    public bool EndsOpen => !Reader.Complete || StoppedBy != null;
    /// <summary>The recorded events of the run itself: without the recorder's closing event when it ended the run.</summary>
    public IReadOnlyList<TraceEvent> Held { get; }
    /// <summary>The aligned events of the run itself: without the recorder's closing shutdown when it ended the run.</summary>
    public IReadOnlyList<DiffEvent> HeldEvents { get; }
    /// <summary>An incomplete trace whose last aligned event is a console line cut short by the recorder's end (no newline yet).</summary>
    public bool UnterminatedLine { get; }
}

/// <summary>
/// A trace that ends before the other run while its own run went on: an incomplete trace (its recorder was killed
/// before it closed the trace: docs/record-replay.md "Killed and interrupted recorders"), or a run the recorder ended
/// at its instruction limit or on request (<see cref="DiffSide.StoppedBy"/>). What the other run did after its end
/// is not compared (<paramref name="NotCompared"/> of its aligned events).
/// </summary>
public sealed record EarlyEnd(DiffSide Trace, bool IsA, int NotCompared)
{
    /// <summary>The run was stopped by its recorder (a complete trace), not cut short by a killed one.</summary>
    public bool Stopped => Trace.StoppedBy != null;
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
    /// <summary>One trace is incomplete, or its run was stopped by the recorder, and ends before the other: the other's later events are not compared.</summary>
    public EarlyEnd? EndsEarly { get; init; }
    /// <summary>
    /// The runs agree as far as the trace that ends early (<see cref="EndsEarly"/>) goes: every event of its run is, in order,
    /// one of the other run's first events (docs/diff.md "Runs that end early"). Neither identical nor different.
    /// </summary>
    public bool AgreeToEarlyEnd { get; init; }
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
        IReadOnlyList<DiffEvent> eventsA = a.Events, eventsB = b.Events;
        var lines = EventAlignment.Align(eventsA, eventsB);
        int first = EventAlignment.FirstDifference(lines);
        // The recorder's closing event of a run it ended is not the guest's: left out, so that the run ends where it stopped.
        EventDivergence? firstEvent = sameImage ? FirstDivergentEvent(a.Held, b.Held) : null;
        bool identical = first < 0 && a.FinalIcount == b.FinalIcount && a.Exit == b.Exit && (!sameImage || firstEvent == null);
        EarlyEnd? early = null;
        bool agreeToEnd = false;
        if (!identical && ShorterOpen(a, b) is var (shortSide, isA))
        {
            var other = isA ? b : a;
            // What the short trace holds is compared with the same stretch of the other run, never with what the other
            // run did after it ended: a trace cut short, or a run stopped at its limit, must not look like a divergence.
            var shortEvents = shortSide.HeldEvents;
            var otherEvents = other.HeldEvents;
            // Events the short trace never got to (the recording's end) in the other run:
            // for one guest image, the events after its last recorded instruction count.
            if (sameImage) otherEvents = [.. otherEvents.Where(e => e.Icount <= shortSide.FinalIcount)];
            int compared = PrefixOf(shortSide, other.HeldEvents);
            if (compared >= 0 && (firstEvent == null || RanOut(firstEvent, isA)))
            {
                agreeToEnd = true;
                shortEvents = [.. shortEvents.Take(compared)];
                otherEvents = [.. other.HeldEvents.Take(compared)];
                firstEvent = null;
            }
            else if (firstEvent != null && RanOut(firstEvent, isA)) firstEvent = null;
            (eventsA, eventsB) = isA ? (shortEvents, otherEvents) : (otherEvents, shortEvents);
            lines = EventAlignment.Align(eventsA, eventsB);
            // Different images have no common instruction counts: the other run's events aligned after the short trace's last are not compared.
            int lastShort = lines.FindLastIndex(l => (isA ? l.A : l.B) != null);
            if (lastShort + 1 < lines.Count) lines.RemoveRange(lastShort + 1, lines.Count - lastShort - 1);
            int notCompared = other.HeldEvents.Count - lines.Count(l => (isA ? l.B : l.A) != null);
            // A short trace that goes on as long as the other run (or longer) does not end early.
            if (agreeToEnd || notCompared > 0) early = new EarlyEnd(shortSide, isA, notCompared);
            if (isA) eventsB = [.. lines.Where(l => l.B != null).Select(l => l.B!)];
            else eventsA = [.. lines.Where(l => l.A != null).Select(l => l.A!)];
            first = EventAlignment.FirstDifference(lines);
        }
        var consoleA = eventsA.Where(e => e.Kind == DiffEvents.Console).ToList();
        var consoleB = eventsB.Where(e => e.Kind == DiffEvents.Console).ToList();
        PinpointResult? where = null;
        string? error = null;
        if (sameImage && !identical && !agreeToEnd && pinpoint)
        {
            try { where = Pinpointer.Find(a, b, options ?? new()); }
            catch (PinpointException e) { error = e.Message; }
        }
        return new TraceDiffResult
        {
            A = a, B = b, SameImage = sameImage, Identical = identical,
            Lines = lines, FirstDifference = first, Hunks = EventAlignment.Hunks(lines, context),
            ConsoleHunks = EventAlignment.Hunks(EventAlignment.Align(consoleA, consoleB), context),
            ByKind = Counts(eventsA, eventsB, e => e.Kind),
            ByHypercall = Counts(eventsA.Where(e => e.Hypercall != null), eventsB.Where(e => e.Hypercall != null), e => e.Hypercall!),
            FirstEvent = firstEvent, Pinpoint = where, PinpointError = error, EndsEarly = early, AgreeToEarlyEnd = agreeToEnd,
        };
    }

    /// <summary>
    /// The trace that ends first of those whose run goes on past it (<see cref="DiffSide.EndsOpen"/>: a killed recorder,
    /// or a run the recorder ended at its instruction limit or on request): the one such trace, or of two the one
    /// with fewer events; null when both runs ended by themselves.
    /// </summary>
    private static (DiffSide Short, bool IsA)? ShorterOpen(DiffSide a, DiffSide b)
    {
        bool openA = a.EndsOpen, openB = b.EndsOpen;
        if (openA && openB)
            return a.HeldEvents.Count < b.HeldEvents.Count || (a.HeldEvents.Count == b.HeldEvents.Count && a.FinalIcount < b.FinalIcount) ? (a, true) : (b, false);
        if (openA) return (a, true);
        if (openB) return (b, false);
        return null;
    }

    /// <summary>
    /// How many aligned events of the run of <paramref name="s"/> (a trace that ends early) are, in order, the first events of
    /// <paramref name="other"/>, when all of them are (-1 when not). A console line the recorder's end cut short
    /// counts when the other run's next line begins with it.
    /// </summary>
    private static int PrefixOf(DiffSide s, IReadOnlyList<DiffEvent> other)
    {
        int n = s.HeldEvents.Count - (s.UnterminatedLine ? 1 : 0);
        if (n > other.Count) return -1;
        for (int i = 0; i < n; i++)
            if (s.HeldEvents[i].Key != other[i].Key) return -1;
        if (s.UnterminatedLine)
        {
            var next = other.Skip(n).FirstOrDefault(e => e.Kind == DiffEvents.Console);
            if (next == null || !next.Key.StartsWith(s.Events[^1].Key, StringComparison.Ordinal)) return -1;
        }
        return n;
    }

    /// <summary>Whether <paramref name="d"/> only says that the trace that ends early (A when <paramref name="shortIsA"/>) has no more events.</summary>
    private static bool RanOut(EventDivergence d, bool shortIsA) => d.Index >= 0 && (shortIsA ? d.A == null : d.B == null);

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
