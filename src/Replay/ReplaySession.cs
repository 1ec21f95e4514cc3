using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Session;
using Replayvisor.Engine.Trace;
using Replayvisor.Replay.Stepping;

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
    /// <summary>The damaged chunk (or footer) that ended the trace's events, when damage did; the events before it were replayed.</summary>
    public TraceFormatException? Damage { get; init; }

    /// <summary>True when the trace holds only a prefix (killed recorder or damage) and the replay verified it.</summary>
    public bool PrefixOnly { get; init; }
}

/// <summary>
/// Replays a whole trace (or up to an instruction count) on a <see cref="TraceReplayer"/> and checks
/// every hypercall result, upcall, exception, failsafe callback, console output, checkpoint hash
/// and the final exit against the recording.
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

    /// <summary>The CPU tier to replay with (all give the same result).</summary>
    public CpuTier Tier { get; init; } = CpuTier.Compiled;
    public int CompileThreshold { get; init; } = X86Cpu.DefaultCompileThreshold;

    public ReplayResult Run()
    {
        var replayer = new TraceReplayer(_reader, _console, Tier, CompileThreshold) { DamageEndsReplay = true };
        try
        {
            return Run(replayer);
        }
        finally
        {
            // Nothing reads the replayer's chunks any more: their buffers go back to the pool for the next replay.
            replayer.Chunks.Release();
        }
    }

    private ReplayResult Run(TraceReplayer replayer)
    {
        var m = replayer.Machine;
        Progress = () => (m.Icount, replayer.RecordedEnd);
        replayer.Step(new StepConstraints { ToIcount = _to });
        // The input cursor looks on to the next input (or the end), as the replay's first look once did before
        // the first instruction: damage in a trace without inputs is reported even by a replay that stopped short of it.
        _ = replayer.NextInput;
        var verifier = replayer.Verifier;
        MachineExit exit = replayer.Exit
            ?? new MachineExit(verifier.First != null ? MachineExitKind.Stopped : MachineExitKind.InstructionLimit,
                verifier.First != null ? "stopped on request" : "stopped after the instruction limit", m.Icount);
        bool prefix = replayer.IsPrefix;
        bool reachedTo = _to is ulong to && exit.Icount >= to && !replayer.PrefixEnded;
        if (verifier.First == null)
        {
            if (prefix)
            {
                // A prefix must be used up: one the replay passed without using every event has diverged.
                if (!replayer.PrefixEnded && !reachedTo)
                {
                    verifier.Finish(exit.Icount, ulong.MaxValue);
                    if (verifier.First == null && replayer.NextInput is { } input)
                        verifier.Fail(exit.Icount, "the replay ended before taking this recorded input", input);
                }
            }
            else if (_to.HasValue)
            {
                // Stopped by the bound at count N (no exit of its own): the replay stops before the next run-loop
                // iteration, so events recorded at N by that iteration (a timer's expiry and its upcall, the
                // first checkpoint at 0) lie beyond the stop; every event before N must have been produced.
                if (replayer.Exit != null) verifier.Finish(exit.Icount, exit.Icount);
                else if (exit.Icount > 0) verifier.Finish(exit.Icount, exit.Icount - 1);
            }
            else
            {
                if (RunOutcome.ClosingEvent(exit) is { } closing) verifier.Observe(closing);
                verifier.Finish(exit.Icount, ulong.MaxValue);
                if (verifier.First == null) SummaryCheck.Check(_reader.Summary, m, exit, verifier);
            }
        }
        string? report = verifier.First is { } d ? Report(d, m) : null;
        ulong recorded = prefix ? replayer.HeldEnd : replayer.RecordedEnd;
        return new ReplayResult(exit, verifier.First, report, verifier.Matched, _reader.Complete, recorded, _reader.Summary)
        {
            Damage = prefix ? replayer.Damage : null,
            PrefixOnly = prefix && !reachedTo,
        };
    }

    private string Report(Divergence d, XenMachine m)
    {
        var symbols = Engine.Boot.GuestSymbols.FromImage(_reader.GuestImage.Span);
        return DivergenceReport.Format(d, m, symbols, Engine.Boot.IretJumpers.Of(_reader.GuestImage.Span, symbols));
    }
}
