using System.Globalization;
using Replayvisor.Engine.Cpu;
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
            verifier.Fail(machine?.Icount ?? 0, what);
            if (inputs != null) inputs.Diverged = true;
            machine?.Cpu.RequestStop();
        }
        bool hostClock = header.GetOption(RunOptionKeys.Clock) == "host";
        var options = new XenMachineOptions
        {
            MemoryMiB = uint.Parse(header.GetOption(RunOptionKeys.MemoryMib) ?? "32", CultureInfo.InvariantCulture),
            CommandLine = header.GetOption(RunOptionKeys.Cmdline) ?? "",
            InitialDomain = header.GetOption(RunOptionKeys.InitDomain) == "true",
            EpochSeconds = uint.Parse(header.GetOption("epoch-seconds") ?? VirtualClock.DefaultEpochSeconds.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture),
            Clock = hostClock ? new TraceClock(queue, Diverged) : null,
            Hypervisor = new HypervisorOptions { Abi = ReplayAbi(header), Console = ReplayConsole(header) },
            Tier = Tier,
            CompileThreshold = CompileThreshold,
        };
        machine = new XenMachine(_reader.GuestImage.ToArray(), options);
        var m = machine;
        Progress = () => (m.Icount, recordedEnd);
        if (_console != null) m.Hypervisor.ConsoleSink = new StreamConsoleSink(_console);
        m.Hypervisor.Observer = new TraceObserver(e => { if (!verifier.Observe(e)) Diverged(verifier.First!.What); });
        ulong interval = ulong.Parse(header.GetOption(RunOptionKeys.CheckpointInterval) ?? "0", CultureInfo.InvariantCulture);
        ulong limit = ulong.Parse(header.GetOption(RunOptionKeys.MaxInstructions) ?? ulong.MaxValue.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
        bool interrupted = _reader.Summary is { Exit: ExitKind.Stopped } && events.LastOrDefault() is ShutdownEvent { Detail: RunOutcome.InterruptedDetail };
        ulong stopAt = _to ?? (!_reader.Complete || interrupted ? recordedEnd : ulong.MaxValue);
        inputs = new ReplayInputs(queue, interval, icount => verifier.Observe(new CheckpointEvent(icount, m.StateHash())),
            stopAt, !string.IsNullOrEmpty(header.GetOption(RunOptionKeys.ChaosSeed)), Diverged, () => m.Icount, interrupted && _to == null);
        MachineExit exit = m.Run(Math.Min(limit, stopAt), inputs);
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

    /// <summary>The recorded Xen profile; a trace written before the option existed ran against 3.1.</summary>
    private static XenAbi ReplayAbi(TraceHeader header)
    {
        string? name = header.GetOption(RunOptionKeys.Xen);
        if (name == null) return XenAbis.Unnamed;
        if (XenAbis.TryParse(name, out XenAbi? abi) && abi != null) return abi.Value;
        throw new TraceFormatException(TraceError.BadHeader, null, $"the trace names an unknown Xen profile '{name}'");
    }

    /// <summary>The recorded console view (display only); unknown or absent = auto.</summary>
    private static ConsoleView ReplayConsole(TraceHeader header)
    {
        ConsoleViews.TryParse(header.GetOption(RunOptionKeys.Console), out ConsoleView view);
        return view;
    }
}
