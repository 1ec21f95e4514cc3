using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Inputs;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Session;
using Replayvisor.Engine.Trace;
using Replayvisor.Engine.Xen;
using Replayvisor.Replay.Streaming;

namespace Replayvisor.Replay.Stepping;

/// <summary>
/// A trace opened for replay as a session: the machine rebuilt from the embedded guest image, the
/// recorded inputs injected at their counts and every produced event verified, run forward in
/// steps under <see cref="StepConstraints"/> that each return why they stopped. Events are read
/// chunk by chunk (<see cref="ChunkCache"/>), so memory does not grow with the trace's length.
/// <see cref="Capture"/> and <see cref="Restore"/> move the whole replay to any earlier point.
/// </summary>
public sealed class TraceReplayer
{
    /// <summary>The longest uninterrupted machine run; an interrupt request is seen between runs.</summary>
    public const ulong SliceLength = 1 << 22;

    private readonly InputCursor _inputs;
    private readonly InputQueue _queue;
    private readonly ReplayingClock? _clock;
    private readonly Checkpoints _checkpoints;
    private readonly ulong _limit;
    private readonly WatchTracker _watch;
    private MachineExit? _exit;
    private StepConstraints? _constraints;
    /// <summary>Matching events not yet reported (several can happen in one step: console output and its hypercall).</summary>
    private readonly Queue<TraceEvent> _eventHits = new();
    private bool _delivered;
    private volatile bool _interrupt;

    /// <param name="tier">The CPU tier to replay with (every tier gives the same result).</param>
    public TraceReplayer(TraceReader reader, Stream? console = null, CpuTier tier = CpuTier.Compiled, int compileThreshold = 50)
    {
        Reader = reader;
        Chunks = new ChunkCache(reader);
        RecordedEnd = reader.Summary?.FinalIcount ?? (reader.Index.Count > 0 ? reader.Index[^1].LastIcount : 0);
        Verifier = new Verifier(Chunks) { TruncatedAt = reader.Complete ? null : RecordedEnd };
        _inputs = new InputCursor(Chunks);
        var queue = new InputQueue(_inputs);
        _queue = queue;
        var options = RunOptions.FromHeader(reader.Header);
        if (options.Clock == ClockKind.Host) _clock = new ReplayingClock(queue, Diverge);
        Machine = new XenMachine(reader.GuestImage.ToArray(), options.Machine(_clock) with { Tier = tier, CompileThreshold = compileThreshold });
        View = new GuestView(Machine.Cpu);
        _watch = new WatchTracker(Machine.Cpu, View);
        if (console != null) Machine.Hypervisor.ConsoleSink = new StreamConsoleSink(console);
        Machine.Hypervisor.Observer = new TraceObserver(OnEvent) { Outputs = options.HypercallOutputs, UpcallSites = options.UpcallSites };
        _limit = options.MaxInstructions;
        Interrupted = reader.Summary is { Exit: ExitKind.Stopped } && LastEvent() is ShutdownEvent { Detail: RunOutcome.InterruptedDetail };
        EndIcount = !reader.Complete || Interrupted ? RecordedEnd : ulong.MaxValue;
        _checkpoints = new Checkpoints(options.CheckpointInterval, e => Verifier.Observe(VcpuStamp.Apply(e, Machine.Hypervisor.CurrentVcpu)));
        Inputs = new ReplayInputs(queue, _checkpoints, EndIcount, options.ChaosSeed != null, Diverge, () => Machine.Icount, Interrupted)
        {
            LegacyConsoleInput = reader.FormatVersion < 2,
        };
    }

    public TraceReader Reader { get; }
    public ChunkCache Chunks { get; }
    public XenMachine Machine { get; }
    public GuestView View { get; }
    public Verifier Verifier { get; }
    public ReplayInputs Inputs { get; }
    /// <summary>The recording's last instruction count.</summary>
    public ulong RecordedEnd { get; }
    /// <summary>Where the replay ends: the recorded end for an incomplete or interrupted trace, otherwise when the guest's run ends.</summary>
    public ulong EndIcount { get; }
    /// <summary>The recording was stopped by Ctrl-C or SIGTERM.</summary>
    public bool Interrupted { get; }
    public ulong Icount => Machine.Icount;
    /// <summary>How the run ended, once it has (the end of the trace).</summary>
    public MachineExit? Exit => _exit;
    public bool AtEnd => _exit != null;
    /// <summary>How many of the trace's events (file order, inputs included) have happened.</summary>
    public long EventIndex => _inputs.Position.Taken + Verifier.Matched;

    /// <summary>Ends the current <see cref="Step"/> at the next slice boundary (callable from another thread).</summary>
    public void Interrupt() => _interrupt = true;

    private TraceEvent? LastEvent() => Reader.Index.Count == 0 ? null : Reader.ReadChunk(Reader.Index[^1])[^1];

    private void Diverge(string what)
    {
        Verifier.Fail(Machine?.Icount ?? 0, what, _queue?.Peek);
        Inputs.Diverged = true;
        Machine?.Cpu.RequestStop();
    }

    private void RequestBreak()
    {
        Inputs.Break = true;
        Machine.Cpu.StopAtCurrentCount();
    }

    private void OnEvent(TraceEvent e)
    {
        e = VcpuStamp.Apply(e, Machine.Hypervisor.CurrentVcpu);
        if (!Verifier.Observe(e)) Diverge(Verifier.First!.What);
        var c = _constraints;
        if (c == null) return;
        if (c.Events is { } f && (f.Matches(e) || (f.EventIndex is long k && EventIndex > k && EventIndex - 1 <= k)))
        {
            _eventHits.Enqueue(e);
            RequestBreak();
        }
        // Stop after a delivery too when stepping, so a breakpoint on a handler's first instruction is seen.
        if (c.NeedsSingleStep && e is UpcallEvent or ExceptionEvent or FailsafeEvent)
        {
            _delivered = true;
            RequestBreak();
        }
    }

    /// <summary>Runs forward until one of <paramref name="c"/>'s conditions holds or the trace ends, and says which.</summary>
    public StopInfo Step(StepConstraints c)
    {
        ArgumentNullException.ThrowIfNull(c);
        _constraints = c;
        _interrupt = false;
        try
        {
            ulong target = c.ToIcount ?? ulong.MaxValue;
            bool single = c.NeedsSingleStep;
            long startIndex = EventIndex;
            while (true)
            {
                if (_eventHits.TryDequeue(out var pending)) return new StopInfo(StopKind.Event, Icount) { Event = pending };
                if (Verifier.First != null) return new StopInfo(StopKind.Diverged, Icount);
                if (_exit != null) return new StopInfo(StopKind.EndOfTrace, Icount) { Exit = _exit };
                if (_interrupt) return new StopInfo(StopKind.Interrupted, Icount);
                if (Icount >= target) return new StopInfo(StopKind.Reached, Icount);
                ulong end = Math.Min(_limit, EndIcount);
                if (Icount >= end && EndIcount != ulong.MaxValue && !Interrupted)
                {
                    _exit = new MachineExit(MachineExitKind.InstructionLimit, "the end of the recorded trace", Icount);
                    continue;
                }
                ulong room = Math.Min(target, end) - Math.Min(Icount, Math.Min(target, end));
                ulong n = single ? Math.Min(1, room) : Math.Min(room, SliceLength);
                if (single) _watch.Before(c.Watchpoints);
                ulong before = Icount;
                _delivered = false;
                var exit = Machine.Run(n, Inputs);
                bool broke = Inputs.Break;
                Inputs.Break = false;
                if (Verifier.First != null) return new StopInfo(StopKind.Diverged, Icount);
                if (Ended(exit, broke)) _exit = exit;
                if (_eventHits.TryDequeue(out var ev)) return new StopInfo(StopKind.Event, Icount) { Event = ev };
                // An event index reached through an input (inputs are not observed events): stop after the run that took it.
                if (c.Events?.EventIndex is long k && startIndex <= k && EventIndex > k) return new StopInfo(StopKind.Event, Icount);
                if (single)
                {
                    if (c.Watchpoints.Count > 0 && _watch.After(retired: !_delivered && Icount == before + 1) is { } hit)
                        return new StopInfo(StopKind.Watchpoint, Icount) { Watch = hit, StepStartIcount = before };
                    if (_exit == null && BreakpointHere(c.Breakpoints) is { } bp)
                        return new StopInfo(StopKind.Breakpoint, Icount) { Breakpoint = bp };
                }
            }
        }
        finally
        {
            _constraints = null;
        }
    }

    /// <summary>True when a machine run ended the replay (the guest stopped, the recorded limit or end was reached).</summary>
    private bool Ended(MachineExit exit, bool broke) => exit.Kind switch
    {
        MachineExitKind.InstructionLimit => exit.Icount >= Math.Min(_limit, EndIcount),
        MachineExitKind.Stopped => !broke && !Inputs.Diverged,
        _ => true,
    };

    /// <summary>The breakpoint at the next instruction, if any.</summary>
    public Breakpoint? BreakpointHere(IReadOnlyList<Breakpoint> breakpoints)
    {
        if (breakpoints.Count == 0) return null;
        uint pc = View.Pc;
        ulong? pa = null;
        foreach (var bp in breakpoints)
        {
            if (bp.Kind == AddressKind.Linear) { if (bp.Address == pc && (bp.Condition == null || bp.Condition(Machine.Cpu))) return bp; continue; }
            pa ??= View.TryTranslate(pc, out ulong p) ? p : ulong.MaxValue;
            if (pa == bp.Address && (bp.Condition == null || bp.Condition(Machine.Cpu))) return bp;
        }
        return null;
    }

    /// <summary>The whole replay as it stands, memory shared page by page with earlier captures.</summary>
    public ReplayState Capture() => new(Machine.SnapshotSharingPages(), _inputs.Position, Verifier.State, _clock?.State, _checkpoints.Last, _exit);

    /// <summary>Puts the whole replay back to <paramref name="s"/> (taken from this replayer).</summary>
    public void Restore(ReplayState s)
    {
        ArgumentNullException.ThrowIfNull(s);
        Machine.Restore(s.Machine);
        _inputs.Position = s.Inputs;
        Verifier.State = s.Verifier;
        if (_clock != null && s.Clock is { } clock) _clock.State = clock;
        _checkpoints.Last = s.LastCheckpoint;
        Inputs.Diverged = s.Verifier.First != null;
        Inputs.Break = false;
        _eventHits.Clear();
        _exit = s.Exit;
    }
}
