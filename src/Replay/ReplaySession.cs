using Replayvisor.Engine.Inputs;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Trace;
using Replayvisor.Engine.Xen;
using Replayvisor.Engine.Time;
using Replayvisor.Engine.Session;

namespace Replayvisor.Replay;

/// <summary>How a replay ended.</summary>
public sealed record ReplayResult(
    MachineExit Exit,
    Divergence? Divergence,
    string? Report,
    long EventsVerified,
    bool TraceComplete,
    ulong RecordedIcount,
    TraceSummary? Recorded)
{
    /// <summary>The damaged chunk (or footer) that cut the trace short, when damage did; the events before it were replayed.</summary>
    public TraceFormatException? Damage { get; init; }

    /// <summary>True when the trace ends early (killed recorder or damage) and the replay verified the prefix it holds.</summary>
    public bool PrefixOnly { get; init; }
}

/// <summary>
/// Re-executes a trace's embedded guest image with the recorded inputs injected at their exact
/// instruction counts, and checks every hypercall result, upcall, exception, failsafe callback,
/// console output, checkpoint hash and the final exit against the recording.
/// </summary>
public sealed class ReplaySession
{
    private readonly TraceReader _reader;
    private readonly Stream? _console;
    private readonly ulong? _to;

    public ReplaySession(TraceReader reader, Stream? console, ulong? to = null)
    {
        _reader = reader;
        _console = console;
        _to = to;
    }

    /// <summary>Instructions replayed so far and the recording's total, readable from another thread while <see cref="Run"/> works.</summary>
    public Func<(ulong Done, ulong Total)> Progress { get; private set; } = () => (0, 0);

    public ReplayResult Run()
    {
        // A damaged chunk ends the events; the ones before it are replayed (a prefix), then the damage is reported.
        var events = new List<TraceEvent>();
        TraceFormatException? damage = null;
        try
        {
            foreach (var e in _reader.ReadEvents()) events.Add(e);
        }
        catch (TraceFormatException ex) when (ex.Error == TraceError.DamagedChunk)
        {
            damage = ex;
        }
        bool prefix = !_reader.Complete || damage != null;
        var header = _reader.Header;
        ulong lastIcount = events.Count > 0 ? events[^1].Icount : 0;
        ulong recordedEnd = !prefix && _reader.Summary is { } summary ? summary.FinalIcount : lastIcount;
        var queue = new InputQueue(events.OfType<InputEvent>());
        Verifier? verifier = null;
        XenMachine? machine = null;
        ReplayInputs? inputs = null;
        bool prefixEnded = false;
        // A prefix is used up once every recorded event, checks and inputs alike, has been used: the
        // replay then ends at the next stop site, exactly where the recording's flushed events end.
        bool UsedUp() => verifier!.Remaining == 0 && queue.Remaining == 0;
        void CheckPrefixEnd()
        {
            if (!prefix || !UsedUp()) return;
            prefixEnded = true;
            if (inputs != null) inputs.PrefixEnded = true;
            machine?.Cpu.RequestStop();
        }
        verifier = new Verifier(events.OfType<CheckEvent>()) { RecordingUsedUp = prefix ? UsedUp : null, OnMatch = CheckPrefixEnd };
        queue.AfterTake = CheckPrefixEnd;
        void Diverged(string what)
        {
            // An input asked for after a prefix is used up lies beyond the recording: the end, not a divergence.
            if (prefix && UsedUp()) { CheckPrefixEnd(); return; }
            verifier.Fail(machine?.Icount ?? 0, what, queue.Peek);
            if (inputs != null) inputs.Diverged = true;
            machine?.Cpu.RequestStop();
        }
        var options = RunOptions.FromHeader(header);
        machine = new XenMachine(_reader.GuestImage.ToArray(), options.Machine(options.Clock == ClockKind.Host ? new ReplayingClock(queue, Diverged) : null));
        var m = machine;
        Progress = () => (m.Icount, recordedEnd);
        if (_console != null) m.Hypervisor.ConsoleSink = new StreamConsoleSink(_console);
        m.Hypervisor.Observer = new TraceObserver(e => { if (!verifier.Observe(e)) Diverged(verifier.First!.What); })
        {
            Outputs = options.HypercallOutputs,
        };
        // A recording stopped by Ctrl-C/SIGTERM ends with its closing event: the replay stops at the
        // same count and the same stop site (XenMachine.StopSiteVisit), so the events there match.
        var closing = !prefix && _reader.Summary is { Exit: ExitKind.Stopped }
            && events.LastOrDefault() is ShutdownEvent { Exit: ExitKind.Stopped, Detail: RunOutcome.InterruptedDetail } c ? c : null;
        ulong pollAt = Math.Min(_to ?? ulong.MaxValue, closing?.Icount ?? ulong.MaxValue);
        bool StopHere() =>
            (_to is ulong to && m.Icount >= to)
            || (closing is { } cl && (m.Icount > cl.Icount || (m.Icount == cl.Icount && m.StopSiteVisit >= cl.StopVisit)));
        var checkpoints = new Checkpoints(options.CheckpointInterval, e => verifier.Observe(e));
        inputs = new ReplayInputs(queue, checkpoints, pollAt, options.ChaosSeed != null, Diverged, StopHere, _reader.FormatVersion) { PrefixEnded = prefixEnded };
        CheckPrefixEnd(); // an empty prefix (or one holding only the boot wallclock) is used up before the first instruction
        // A prefix replay that passes its last recorded count without using every event has diverged.
        ulong limit = Math.Min(options.MaxInstructions, prefix ? lastIcount + 1 : ulong.MaxValue);
        MachineExit exit = m.Run(limit, inputs);
        if (verifier.First == null)
        {
            if (prefix)
            {
                if (!prefixEnded && !(_to is ulong to && exit.Icount >= to))
                {
                    verifier.Finish(exit.Icount, ulong.MaxValue);
                    if (verifier.First == null && queue.Peek is { } input)
                        verifier.Fail(exit.Icount, "the replay ended before taking this recorded input", input);
                }
            }
            else if (_to.HasValue)
            {
                verifier.Finish(exit.Icount, exit.Icount);
            }
            else
            {
                if (RunOutcome.ClosingEvent(exit) is { } end) verifier.Observe(end);
                verifier.Finish(exit.Icount, ulong.MaxValue);
                if (verifier.First == null) CheckSummary(verifier, m, exit);
            }
        }
        string? report = verifier.First is { } d ? DivergenceReport.Format(d, m, Engine.Boot.GuestSymbols.FromImage(_reader.GuestImage.Span)) : null;
        return new ReplayResult(exit, verifier.First, report, verifier.Matched, _reader.Complete, recordedEnd, _reader.Summary)
        {
            Damage = damage,
            PrefixOnly = prefix && !(_to is ulong t && exit.Icount >= t && !prefixEnded),
        };
    }

    /// <summary>The end of a complete replay against the recording's summary: count, exit, final state hash and guest time.</summary>
    private void CheckSummary(Verifier verifier, XenMachine m, MachineExit exit)
    {
        if (_reader.Summary is not { } s) return;
        if (s.FinalIcount != exit.Icount || s.Exit != RunOutcome.ExitOf(exit.Kind))
        {
            verifier.Fail(exit.Icount, $"the recording ended at instruction {s.FinalIcount} ({s.Exit}); the replay ended at {exit.Icount} ({exit.Kind})");
            return;
        }
        if (s.FinalStateHash.Count > 0 && !s.FinalStateHash.AsSpan().SequenceEqual(m.StateHash()))
        {
            verifier.Fail(exit.Icount, $"the final machine state differs from the recording's (state hash {Convert.ToHexStringLower(s.FinalStateHash.AsSpan())} recorded)");
            return;
        }
        // The recorder takes the guest time from the virtual clock only (a host clock read would be an unlogged input).
        ulong guestNs = m.Clock is VirtualClock vc ? vc.SystemTimeNs(exit.Icount) : 0;
        if (s.GuestTimeNs != guestNs)
            verifier.Fail(exit.Icount, $"the recording ended at guest time {s.GuestTimeNs} ns; the replay at {guestNs} ns");
    }
}
