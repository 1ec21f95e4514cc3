using System.Runtime.CompilerServices;
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
    /// <summary>
    /// The longest uninterrupted machine run, give or take: an interrupt request is seen between
    /// runs. A run ends at the first stop the recording also made past this many instructions
    /// (<see cref="ReplayInputs.SliceEnd"/>): a stop of the replay's own would start the CPU at
    /// another block than the recording did, and so form other compiled regions (Engine/Inputs/PollPeriod.cs).
    /// </summary>
    public const ulong SliceLength = 1 << 22;

    private readonly InputCursor _inputs;
    private readonly InputQueue _queue;
    private readonly ReplayingClock? _clock;
    private readonly Checkpoints _checkpoints;
    private readonly ulong _limit;
    private readonly WatchTracker _watch;
    private MachineExit? _exit;
    private bool _prefixEnded;
    private StepConstraints? _constraints;
    /// <summary>Matching events not yet reported (several can happen in one step: console output and its hypercall).</summary>
    private readonly Queue<(TraceEvent Event, long Index)> _eventHits = new();
    private bool _delivered;
    /// <summary>The breakpoint the CPU stopped at in the current step (full-speed breakpoints, <see cref="OnBreakpoint"/>).</summary>
    private Breakpoint? _breakHit;
    private (ulong Icount, uint Pc) _stepStart;
    /// <summary>The vCPU <see cref="StepConstraints.UntilScheduled"/> names got the CPU in the current machine run.</summary>
    private bool _scheduled;
    private volatile bool _interrupt;

    /// <param name="tier">The CPU tier to replay with (every tier gives the same result).</param>
    public TraceReplayer(TraceReader reader, Stream? console = null, CpuTier tier = CpuTier.Compiled, int compileThreshold = X86Cpu.DefaultCompileThreshold)
    {
        Reader = reader;
        Chunks = new ChunkCache(reader);
        RecordedEnd = reader.Summary?.FinalIcount ?? (reader.Index.Count > 0 ? reader.Index[^1].LastIcount : 0);
        Verifier = new Verifier(Chunks) { RecordingUsedUp = () => UsedUp, OnMatch = CheckPrefixEnd };
        _inputs = new InputCursor(Chunks) { AfterTake = AfterInputTaken };
        var queue = new InputQueue(_inputs);
        _queue = queue;
        var options = RunOptions.FromHeader(reader.Header);
        // The replaying clock takes the boot wallclock here and the machine reads the clock as it is
        // built: an input missing that early is the end of an empty prefix (Diverge), not a crash.
        if (options.Clock == ClockKind.Host) _clock = new ReplayingClock(queue, Diverge);
        Machine = new XenMachine(reader.GuestImage.ToArray(), options.Machine(_clock) with { Tier = tier, CompileThreshold = compileThreshold });
        View = new GuestView(Machine.Cpu);
        _watch = new WatchTracker(Machine.Cpu, View);
        Machine.Hypervisor.Switching = OnSwitching;
        if (console != null) Machine.Hypervisor.ConsoleSink = new StreamConsoleSink(console);
        Machine.Hypervisor.Observer = new TraceObserver(OnEvent)
        {
            Outputs = options.HypercallOutputs, Expected = Verifier.Columns, UpcallSites = options.UpcallSites, ExceptionHandlers = options.ExceptionHandlers,
        };
        _limit = options.MaxInstructions;
        // A recording stopped by Ctrl-C/SIGTERM: the replay stops at its count and stop site, and its own closing event must match.
        var stoppedAt = reader.Summary is { Exit: ExitKind.Stopped } && LastEvent() is ShutdownEvent { Detail: RunOutcome.InterruptedDetail } c ? c : null;
        Interrupted = stoppedAt != null;
        _checkpoints = new Checkpoints(options.CheckpointInterval, e =>
        {
            Verifier.Observe(VcpuStamp.Apply(e, Machine.Hypervisor.CurrentVcpu));
            BreakAtEventIndex();
        });
        Inputs = new ReplayInputs(queue, _checkpoints, stoppedAt?.Icount ?? ulong.MaxValue, options.ChaosSeed != null, Diverge,
            Machine, stoppedAt)
        {
            Cursor = _inputs,
            LegacyConsoleInput = reader.FormatVersion < 2,
            Diverged = Verifier.First != null,
        };
        CheckPrefixEnd(); // an empty prefix (or one holding only the boot wallclock) is used up before the first instruction
        Inputs.PrefixEnded = _prefixEnded;
    }

    public TraceReader Reader { get; }
    public ChunkCache Chunks { get; }
    public XenMachine Machine { get; }
    public GuestView View { get; }
    public Verifier Verifier { get; }
    public ReplayInputs Inputs { get; }
    /// <summary>The recording's last instruction count.</summary>
    public ulong RecordedEnd { get; }
    /// <summary>The recording was stopped by Ctrl-C or SIGTERM.</summary>
    public bool Interrupted { get; }
    public ulong Icount => Machine.Icount;
    /// <summary>How the run ended, once it has (the end of the trace).</summary>
    public MachineExit? Exit => _exit;
    public bool AtEnd => _exit != null;
    /// <summary>Machine runs made by <see cref="Step"/> so far (one per instruction while single-stepping).</summary>
    public long MachineRuns { get; private set; }
    /// <summary>How many of the trace's events (file order, inputs included) have happened.</summary>
    public long EventIndex => _inputs.Position.Taken + Verifier.Matched;

    /// <summary>The last context switch the replay made (null before the first one this replayer saw; a restore does not change it).</summary>
    public VcpuSwitch? LastSwitch { get; private set; }

    /// <summary>Context switches this replayer has seen, counted (a restore does not change it).</summary>
    public long Switches { get; private set; }

    /// <summary>When set, every context switch is added to it (a debugger's look at which vCPU ran when).</summary>
    public List<VcpuSwitch>? SwitchLog { get; set; }

    /// <summary>The next recorded input not yet taken, if any.</summary>
    public InputEvent? NextInput => _queue.Peek;

    /// <summary>
    /// The trace holds only a prefix of its recording: the recorder never completed it, or damage
    /// (found at open or while streaming) ends its events early (docs/record-replay.md "Prefixes").
    /// </summary>
    public bool IsPrefix => !Reader.Complete || Chunks.Damage != null;

    /// <summary>The damage that ends the trace's events, once the replay has met it.</summary>
    public TraceFormatException? Damage => Chunks.Damage;

    /// <summary>
    /// True: a prefix ended by damage ends the replay like any prefix and <see cref="Damage"/> says
    /// why (`replay`). False (a debugging session): reaching the end of the events before the
    /// damage throws it, so the session reports it.
    /// </summary>
    public bool DamageEndsReplay { get; init; }

    /// <summary>True once a prefix has been used up: the replay ended where the recording's held events end.</summary>
    public bool PrefixEnded => _prefixEnded;

    /// <summary>The count of the last event a prefix holds (events in chunks before any damage).</summary>
    public ulong HeldEnd
    {
        get
        {
            int held = Math.Min(Chunks.HeldChunks, Reader.Index.Count);
            return held > 0 ? Reader.Index[held - 1].LastIcount : 0;
        }
    }

    /// <summary>Where a step must end: one past a prefix's last held event (using everything up ends it sooner); a complete trace ends when the guest's run does.</summary>
    private ulong CurrentEnd => IsPrefix ? HeldEnd + 1 : ulong.MaxValue;

    /// <summary>
    /// Every recorded event, checks and inputs alike, has been used, and there are no more (reading on
    /// finds the end or damage). The checks are asked first: while the next one is held, nothing is read
    /// (the input cursor looks through a trace without inputs while the guest runs, ReplayInputs.NextPoll).
    /// </summary>
    private bool UsedUp => !Verifier.NextHeld && Verifier.AtEnd && _inputs.Peek == null && IsPrefix;

    private void AfterInputTaken()
    {
        // A time value taken inside a CPU run can uncover console input due before the run's planned stop.
        if (_queue?.Peek is ConsoleInputEvent c) Machine?.PollNoLaterThan(c.Icount);
        CheckPrefixEnd();
        BreakAtEventIndex();
    }

    /// <summary>A stop at an event index that is an input or a checkpoint: where it happens, as <see cref="OnEvent"/> stops at an observed one.</summary>
    private void BreakAtEventIndex()
    {
        if (_constraints?.Events?.EventIndex is long k && EventIndex - 1 == k) RequestBreak();
    }

    /// <summary>Ends the replay of a prefix once it is used up: what the guest does or asks for beyond it is not in the recording.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void CheckPrefixEnd()
    {
        if (NothingToCheck) return;
        if (_prefixEnded || Verifier.First != null || !UsedUp) return;
        _prefixEnded = true;
        if (Inputs != null) Inputs.PrefixEnded = true;
        Machine?.Cpu.RequestStop();
    }

    /// <summary>
    /// The common case after a match, decided without reading: the next recorded check is held, so
    /// not everything is used up, and <see cref="UsedUp"/> would read nothing either.
    /// </summary>
    private bool NothingToCheck
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Verifier.NextHeld;
    }

    /// <summary>Ends the current <see cref="Step"/> at the next slice boundary (callable from another thread).</summary>
    public void Interrupt() => _interrupt = true;

    /// <summary>Forgets an interrupt that no step has consumed (one that came while nothing ran).</summary>
    public void ClearInterrupt() => _interrupt = false;

    /// <summary>The trace's last event; null when there is none or its chunk is damaged (the replay meets the damage in order).</summary>
    private TraceEvent? LastEvent()
    {
        if (Reader.Index.Count == 0) return null;
        try
        {
            return Reader.ReadChunk(Reader.Index[^1])[^1];
        }
        catch (TraceFormatException ex) when (ex.Error == TraceError.DamagedChunk)
        {
            return null;
        }
    }

    private void Diverge(string what)
    {
        // An input asked for once a prefix is used up lies beyond the recording: its end, not a divergence.
        if (_prefixEnded || UsedUp)
        {
            CheckPrefixEnd();
            return;
        }
        Verifier.Fail(Machine?.Icount ?? 0, what, _queue?.Peek);
        if (Inputs != null) Inputs.Diverged = true;
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
            _eventHits.Enqueue((e, EventIndex - 1));
            RequestBreak();
        }
        // Stop after a delivery too when stepping, so a breakpoint on a handler's first instruction is seen.
        if (c.NeedsSingleStep && e is UpcallEvent or ExceptionEvent or FailsafeEvent)
        {
            _delivered = true;
            RequestBreak();
        }
    }

    /// <summary>The scheduler switches to vCPU <paramref name="next"/> (Hypervisor.Switching): log it, and stop after the switch if the step waits for it.</summary>
    private void OnSwitching(int next)
    {
        var s = new VcpuSwitch(Icount, next, EventIndex);
        LastSwitch = s;
        Switches++;
        SwitchLog?.Add(s);
        if (_constraints?.UntilScheduled != next) return;
        // The break is seen at the top of the run loop, after the switch and the vCPU's schedule-in.
        _scheduled = true;
        RequestBreak();
    }

    /// <summary>Runs forward until one of <paramref name="c"/>'s conditions holds or the trace ends, and says which.</summary>
    public StopInfo Step(StepConstraints c)
    {
        ArgumentNullException.ThrowIfNull(c);
        _constraints = c;
        // Plain hypercalls and upcalls are matched in the recording's columns (TraceObserver.Expected) unless every event must be seen (OnEvent).
        Verifier.PlainAllowed = c.Events == null && !c.NeedsSingleStep;
        try
        {
            ulong target = c.ToIcount ?? ulong.MaxValue;
            bool single = c.NeedsSingleStep;
            long startIndex = EventIndex;
            // Breakpoints alone run at full speed: the CPU stops before one (X86Cpu.SetHostBreakpoints).
            _stepStart = (Icount, View.Pc);
            KeepHitsFor(c.Events);
            // Read watchpoints also hear of the guest memory Xen reads for the instruction (a hypercall's arguments).
            if (single && WatchTracker.WantsReads(c.Watchpoints)) Machine.Guest.ReadWatch = _watch;
            if (!single && c.Breakpoints.Count > 0)
                Machine.Cpu.SetHostBreakpoints(c.Breakpoints.Where(b => b.Kind == AddressKind.Linear).Select(b => (uint)b.Address),
                    c.Breakpoints.Where(b => b.Kind == AddressKind.Physical).Select(b => b.Address), OnBreakpoint);
            while (true)
            {
                if (_eventHits.TryDequeue(out var pending)) return new StopInfo(StopKind.Event, Icount) { Event = pending.Event };
                if (Verifier.First != null) return new StopInfo(StopKind.Diverged, Icount);
                if (_exit != null) return new StopInfo(StopKind.EndOfTrace, Icount) { Exit = _exit };
                // An interrupt is consumed by the step it ends, so one that comes just before a step starts is not lost.
                if (_interrupt) { _interrupt = false; return new StopInfo(StopKind.Interrupted, Icount); }
                if (Icount >= target) return new StopInfo(StopKind.Reached, Icount);
                if (Damage is { } damage && !DamageEndsReplay && (_prefixEnded || Icount >= CurrentEnd)) throw damage;
                if (_prefixEnded)
                {
                    _exit = new MachineExit(MachineExitKind.Stopped, "the end of the recorded prefix", Icount);
                    continue;
                }
                ulong endIcount = CurrentEnd;
                ulong end = Math.Min(_limit, endIcount);
                if (Icount >= end && endIcount != ulong.MaxValue)
                {
                    _exit = new MachineExit(MachineExitKind.InstructionLimit, "the end of the recorded trace", Icount);
                    continue;
                }
                ulong room = Math.Min(target, end) - Math.Min(Icount, Math.Min(target, end));
                ulong n = single ? Math.Min(1, room) : room;
                if (single) _watch.Before(c.Watchpoints);
                ulong before = Icount;
                long beforeIndex = EventIndex;
                _delivered = false;
                _scheduled = false;
                MachineRuns++;
                Inputs.SliceEnd = single ? ulong.MaxValue : Icount + Math.Min(SliceLength, ulong.MaxValue - Icount);
                var exit = Machine.Run(n, new ReplayInputs.Direct(Inputs));
                Inputs.SliceEnd = ulong.MaxValue;
                // Stopped with no other reason to stop left: the slice ended (a pause, like a break).
                bool broke = Inputs.Break || (exit.Kind == MachineExitKind.Stopped && !Inputs.StopRequested);
                Inputs.Break = false;
                if (Verifier.First != null) return new StopInfo(StopKind.Diverged, Icount);
                if (Ended(exit, broke)) _exit = exit;
                if (_eventHits.TryDequeue(out var ev)) return new StopInfo(StopKind.Event, Icount) { Event = ev.Event };
                if (_breakHit is { } hitBp) return new StopInfo(StopKind.Breakpoint, Icount) { Breakpoint = hitBp };
                // An event index reached through an input (inputs are not observed events): stop after the run that took it.
                if (c.Events?.EventIndex is long k && startIndex <= k && EventIndex > k) return new StopInfo(StopKind.Event, Icount) { Event = EventAt(k) };
                if (single && c.Watchpoints.Count > 0 && _watch.After(retired: !_delivered && Icount == before + 1) is { } hit)
                    return new StopInfo(StopKind.Watchpoint, Icount) { Watch = hit, StepStartIcount = before, StepStartEventIndex = beforeIndex };
                // A switch ends the run after it (the watch check above saw the instruction before it; a breakpoint of the vCPU switched in waits for the next step).
                if (_scheduled) return new StopInfo(StopKind.Scheduled, Icount);
                if (single && _exit == null && BreakpointHere(c.Breakpoints) is { } bp)
                    return new StopInfo(StopKind.Breakpoint, Icount) { Breakpoint = bp };
            }
        }
        finally
        {
            _constraints = null;
            Verifier.PlainAllowed = true;
            _breakHit = null;
            _scheduled = false;
            Machine.Cpu.SetHostBreakpoints(null, null, null);
            Machine.Guest.ReadWatch = null;
        }
    }

    /// <summary>
    /// Hits left over from an earlier step (several events at one count) are reported only if this
    /// step's filter stops at them too: a stepi or goto after `catch clear` moves on.
    /// </summary>
    private void KeepHitsFor(EventStop? filter)
    {
        for (int n = _eventHits.Count; n > 0; n--)
        {
            var hit = _eventHits.Dequeue();
            if (filter != null && (filter.Matches(hit.Event) || filter.EventIndex == hit.Index)) _eventHits.Enqueue(hit);
        }
    }

    /// <summary>The CPU is about to run the instruction at a breakpoint's address: stop if one applies there (not the one the step started on).</summary>
    private bool OnBreakpoint()
    {
        if (_constraints is not { } c || (Icount == _stepStart.Icount && View.Pc == _stepStart.Pc)) return false;
        if (BreakpointHere(c.Breakpoints) is not { } bp) return false;
        _breakHit = bp;
        RequestBreak();
        return true;
    }

    /// <summary>The trace's event with index <paramref name="index"/> (file order, inputs included).</summary>
    /// <summary>The trace's event with index <paramref name="index"/> (file order, inputs included), or null past its end; from <see cref="Chunks"/> when it holds the chunk.</summary>
    internal TraceEvent? EventAt(long index)
    {
        var chunks = Reader.Index;
        for (int c = 0; c < chunks.Count; c++)
        {
            if (index < chunks[c].EventCount) return (Chunks.TryGet(c) ?? Reader.ReadChunk(chunks[c]))[(int)index];
            index -= chunks[c].EventCount;
        }
        return null;
    }

    /// <summary>True when a machine run ended the replay (the guest stopped, the recorded limit or end was reached).</summary>
    private bool Ended(MachineExit exit, bool broke) => exit.Kind switch
    {
        MachineExitKind.InstructionLimit => exit.Icount >= Math.Min(_limit, CurrentEnd),
        MachineExitKind.Stopped => !broke && !Inputs.Diverged && !_prefixEnded,
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
        _prefixEnded = s.Verifier.First == null && UsedUp;
        Inputs.PrefixEnded = _prefixEnded;
    }
}
