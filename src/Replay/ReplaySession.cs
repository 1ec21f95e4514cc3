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
    TraceSummary? Recorded);

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
    public int CompileThreshold { get; init; } = 50;

    public ReplayResult Run()
    {
        var replayer = new TraceReplayer(_reader, _console, Tier, CompileThreshold);
        var m = replayer.Machine;
        Progress = () => (m.Icount, replayer.RecordedEnd);
        replayer.Step(new StepConstraints { ToIcount = _to });
        var verifier = replayer.Verifier;
        MachineExit exit = replayer.Exit
            ?? new MachineExit(verifier.First != null ? MachineExitKind.Stopped : MachineExitKind.InstructionLimit,
                verifier.First != null ? "stopped on request" : "stopped after the instruction limit", m.Icount);
        bool partial = _to.HasValue || !_reader.Complete;
        if (verifier.First == null && !partial && RunOutcome.ClosingEvent(exit) is { } closing) verifier.Observe(closing);
        if (verifier.First == null)
        {
            verifier.Finish(exit.Icount, partial ? exit.Icount : ulong.MaxValue);
            if (!partial && _reader.Summary is { } s && verifier.First == null && (s.FinalIcount != exit.Icount || s.Exit != RunOutcome.ExitOf(exit.Kind)))
                verifier.Fail(exit.Icount, $"the recording ended at instruction {s.FinalIcount} ({s.Exit}); the replay ended at {exit.Icount} ({exit.Kind})");
        }
        string? report = verifier.First is { } d ? DivergenceReport.Format(d, m, Engine.Boot.GuestSymbols.FromImage(_reader.GuestImage.Span)) : null;
        return new ReplayResult(exit, verifier.First, report, verifier.Matched, _reader.Complete, replayer.RecordedEnd, _reader.Summary);
    }
}
