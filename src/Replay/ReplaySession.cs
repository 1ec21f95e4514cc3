using Replayvisor.Engine.Cpu;
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
    TraceSummary? Recorded);

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

    /// <summary>The CPU tier to replay with (all give the same result).</summary>
    public CpuTier Tier { get; init; } = CpuTier.Compiled;
    public int CompileThreshold { get; init; } = 50;

    public ReplayResult Run()
    {
        var events = _reader.ReadEvents().ToList();
        var header = _reader.Header;
        ulong recordedEnd = _reader.Summary?.FinalIcount ?? (events.Count > 0 ? events[^1].Icount : 0);
        var verifier = new Verifier(events.OfType<CheckEvent>()) { TruncatedAt = _reader.Complete ? null : recordedEnd };
        var queue = new InputQueue(events.OfType<InputEvent>());
        XenMachine? machine = null;
        ReplayInputs? inputs = null;
        void Diverged(string what)
        {
            verifier.Fail(machine?.Icount ?? 0, what, queue.Peek);
            if (inputs != null) inputs.Diverged = true;
            machine?.Cpu.RequestStop();
        }
        var options = RunOptions.FromHeader(header);
        machine = new XenMachine(_reader.GuestImage.ToArray(), options.Machine(options.Clock == ClockKind.Host ? new ReplayingClock(queue, Diverged) : null) with { Tier = Tier, CompileThreshold = CompileThreshold });
        var m = machine;
        Progress = () => (m.Icount, recordedEnd);
        if (_console != null) m.Hypervisor.ConsoleSink = new StreamConsoleSink(_console);
        m.Hypervisor.Observer = new TraceObserver(e => { if (!verifier.Observe(e)) Diverged(verifier.First!.What); })
        {
            Outputs = options.HypercallOutputs,
        };
        bool interrupted = _reader.Summary is { Exit: ExitKind.Stopped } && events.LastOrDefault() is ShutdownEvent { Detail: RunOutcome.InterruptedDetail };
        ulong stopAt = _to ?? (!_reader.Complete || interrupted ? recordedEnd : ulong.MaxValue);
        var checkpoints = new Checkpoints(options.CheckpointInterval, e => verifier.Observe(e));
        inputs = new ReplayInputs(queue, checkpoints, stopAt, options.ChaosSeed != null, Diverged, () => m.Icount, interrupted && _to == null);
        MachineExit exit = m.Run(Math.Min(options.MaxInstructions, stopAt), inputs);
        bool partial = _to.HasValue || !_reader.Complete;
        if (verifier.First == null && !partial && RunOutcome.ClosingEvent(exit) is { } closing) verifier.Observe(closing);
        if (verifier.First == null)
        {
            verifier.Finish(exit.Icount, partial ? exit.Icount : ulong.MaxValue);
            if (!partial && _reader.Summary is { } s && verifier.First == null && (s.FinalIcount != exit.Icount || s.Exit != RunOutcome.ExitOf(exit.Kind)))
                verifier.Fail(exit.Icount, $"the recording ended at instruction {s.FinalIcount} ({s.Exit}); the replay ended at {exit.Icount} ({exit.Kind})");
        }
        string? report = verifier.First is { } d ? DivergenceReport.Format(d, m, Engine.Boot.GuestSymbols.FromImage(_reader.GuestImage.Span)) : null;
        return new ReplayResult(exit, verifier.First, report, verifier.Matched, _reader.Complete, recordedEnd, _reader.Summary);
    }

}
