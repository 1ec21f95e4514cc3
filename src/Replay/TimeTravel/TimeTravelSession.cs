using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Session;
using Replayvisor.Engine.Trace;
using Replayvisor.Replay.Keyframes;
using Replayvisor.Replay.Stepping;

namespace Replayvisor.Replay.TimeTravel;

/// <summary>Options for a <see cref="TimeTravelSession"/>.</summary>
public sealed record TimeTravelOptions
{
    public const int DefaultSnapshotMemoryMiB = 256;

    /// <summary>Memory the snapshot ladder may use (--snapshot-memory MiB).</summary>
    public long SnapshotMemoryBytes { get; init; } = DefaultSnapshotMemoryMiB * 1024L * 1024;
    /// <summary>Instructions between the regular snapshots taken while running forward (0: none, no ladder).</summary>
    public ulong SnapshotInterval { get; init; } = 1 << 23;
    /// <summary>The closest approach snapshot to a seek target: seeks drop snapshots at target-2^k down to this gap, so stepping back again is cheap.</summary>
    public ulong FinestGap { get; init; } = 1 << 12;
    /// <summary>Seek from the trace's keyframes (false: only from the ladder, as for a trace without them; for comparisons).</summary>
    public bool UseKeyframes { get; init; } = true;
}

/// <summary>
/// A replay that moves both ways (docs/time-travel.md): forward under <see cref="StepConstraints"/>,
/// and back by restoring the nearest earlier snapshot of the ladder and running forward again.
/// Reverse-continue scans back window by window between snapshots and stops at the last hit of
/// the latest window that has one. Reaching instruction 0 going back is reported as
/// <see cref="StopKind.BeginningOfTrace"/>, the end of the recording as <see cref="StopKind.EndOfTrace"/>.
/// </summary>
public sealed class TimeTravelSession
{
    private readonly TraceReplayer _replayer;
    private readonly TimeTravelOptions _options;
    /// <summary>
    /// The state is instruction <see cref="Icount"/> itself (a step reached its count, a snapshot), not a
    /// stop at that count after something the machine did there (a delivery before a breakpoint on the handler).
    /// </summary>
    private bool _atCount = true;

    /// <summary>What a step stops after besides an instruction: an asynchronous delivery (docs/time-travel.md "Position").</summary>
    private static readonly EventStop DeliveryStops = new() { Upcall = true, AnyException = true };

    public TimeTravelSession(TraceReader reader, TimeTravelOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(reader);
        _options = options ?? new TimeTravelOptions();
        _replayer = new TraceReplayer(reader);
        Ladder = new SnapshotLadder(_options.SnapshotMemoryBytes);
        Symbols = GuestSymbols.FromImage(reader.GuestImage.Span);
        Keyframes = _options.UseKeyframes ? [.. reader.Keyframes.Where(k => k.Layout == KeyframeCodec.Layout)] : [];
        KeyframesIgnored = _options.UseKeyframes ? reader.Keyframes.Count - Keyframes.Count : 0;
        TakeSnapshot();
    }

    /// <summary>The trace's keyframes this build can restore (written with its snapshot layout).</summary>
    public IReadOnlyList<TraceKeyframeInfo> Keyframes { get; }
    /// <summary>Keyframes written with another snapshot layout (another engine build): seeks replay instead.</summary>
    public int KeyframesIgnored { get; }
    /// <summary>Keyframes restored so far.</summary>
    public int KeyframesLoaded { get; private set; }

    public TraceReplayer Replayer => _replayer;
    public SnapshotLadder Ladder { get; }
    public GuestSymbols Symbols { get; }
    /// <summary>The function(s) that jump to the iret stub, as `dump` names them after an iret (IretJumpers; found on first use).</summary>
    public string IretJumpers => _iretJumpers ??= Engine.Boot.IretJumpers.Of(Reader.GuestImage.Span, Symbols);
    private string? _iretJumpers;
    public ulong Icount => _replayer.Icount;
    public long EventIndex => _replayer.EventIndex;
    public TraceReader Reader => _replayer.Reader;

    /// <summary>Ends the current operation at the next slice boundary (from another thread: a gdb interrupt, Ctrl-C).</summary>
    public void Interrupt() => _replayer.Interrupt();

    /// <summary>Forgets an interrupt that came while nothing ran (so it does not end the next command at once).</summary>
    public void ClearInterrupt() => _replayer.ClearInterrupt();

    /// <summary>Captures the current state into the ladder (if none is there yet) and says what it cost in bytes.</summary>
    public long TakeSnapshot()
    {
        if (Ladder.Has(Icount)) return 0;
        long before = GC.GetAllocatedBytesForCurrentThread();
        var state = _replayer.Capture();
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Ladder.Add(state, Math.Max(0, allocated - Ladder.NewPageBytes(state)), Icount);
        return allocated;
    }

    /// <summary>Runs forward under <paramref name="c"/>, dropping a regular snapshot every interval on the way.</summary>
    public StopInfo Step(StepConstraints c)
    {
        ArgumentNullException.ThrowIfNull(c);
        ulong interval = _options.SnapshotInterval;
        while (true)
        {
            ulong target = c.ToIcount ?? ulong.MaxValue;
            ulong next = interval == 0 ? ulong.MaxValue : (Icount / interval + 1) * interval;
            var stop = _replayer.Step(next < target ? c with { ToIcount = next } : c);
            _atCount = stop.Kind == StopKind.Reached;
            if (stop.Kind != StopKind.Reached || Icount >= target) return stop;
            TakeSnapshot();
        }
    }

    /// <summary>
    /// Deliveries (upcall, exception or failsafe bounces) made at the current count so far: 0 at
    /// instruction N itself, k after the k-th delivery at that boundary (docs/time-travel.md "Position").
    /// </summary>
    public int Delivered
    {
        get
        {
            int n = 0;
            for (long j = LatestDelivery(Icount, EventIndex); j >= 0; j = LatestDelivery(Icount, j)) n++;
            return n;
        }
    }

    private static bool IsDelivery(TraceEvent e) => e is UpcallEvent or ExceptionEvent or FailsafeEvent;

    /// <summary>
    /// The index of the latest delivery made at count <paramref name="icount"/> among the trace's events
    /// before index <paramref name="before"/> (file order, the order they happen), or -1.
    /// </summary>
    private long LatestDelivery(ulong icount, long before)
    {
        var index = Reader.Index;
        long first = 0;
        int c = 0;
        while (c < index.Count && first + index[c].EventCount < before) first += index[c++].EventCount;
        if (c == index.Count) return -1; // past the trace's events: none to look at
        for (long k = before - 1; k >= 0 && c >= 0; k--)
        {
            while (c >= 0 && k < first) { c--; if (c >= 0) first -= index[c].EventCount; }
            if (c < 0) break;
            var events = _replayer.Chunks.TryGet(c) ?? Reader.ReadChunk(index[c]);
            var e = events[(int)(k - first)];
            if (e.Icount < icount) break;
            if (e.Icount == icount && IsDelivery(e)) return k;
        }
        return -1;
    }

    /// <summary>
    /// One step forward (gdb's stepi): the next instruction, or, when a delivery is due at this count,
    /// that delivery alone (the stop is at the handler's first instruction, as a step into a signal
    /// handler stops), so that <see cref="ReverseStepInstruction"/> undoes exactly what it did.
    /// </summary>
    public StopInfo StepInstruction()
    {
        ulong n = Icount;
        long e = EventIndex;
        while (true)
        {
            var stop = Step(new StepConstraints { ToIcount = n + 1, Events = DeliveryStops });
            // A hit left over at this very state (deliveries the machine made in one go) is not a move.
            if (stop.Kind == StopKind.Event && Icount == n && EventIndex == e) continue;
            return stop;
        }
    }

    private int CurrentVcpu => _replayer.Machine.Hypervisor.CurrentVcpu;

    /// <summary>
    /// One step of vCPU <paramref name="vcpu"/> (gdb's stepi on a thread; docs/gdbserver.md "Stepping a
    /// thread"): runs on until that vCPU has retired one instruction or had one delivery, whichever it
    /// does first, and stops right after it. The other vCPUs run meanwhile as the recording scheduled
    /// them, at full speed while <paramref name="vcpu"/> waits for the CPU (the run stops when the
    /// scheduler switches it in), and <paramref name="meanwhile"/>'s breakpoints and watchpoints stop
    /// them (its ToIcount and Events are not used). A vCPU that never runs again ends at the end of the
    /// trace. A step of the running vCPU is <see cref="StepInstruction()"/> unless the scheduler
    /// switches it out before its instruction.
    /// </summary>
    public StopInfo StepInstruction(int vcpu, StepConstraints? meanwhile = null)
    {
        var wait = (meanwhile ?? new StepConstraints()) with { ToIcount = null, Events = null, UntilScheduled = vcpu };
        while (true)
        {
            if (CurrentVcpu != vcpu)
            {
                var stop = Step(wait);
                if (stop.Kind != StopKind.Scheduled) return stop;
                // What its schedule-in delivered (events pending for it) is its step.
                if (_replayer.LastSwitch is { } sw && sw.To == vcpu && sw.Icount == Icount && LatestDelivery(Icount, EventIndex) is var d && d >= sw.EventIndex)
                    return new StopInfo(StopKind.Event, Icount) { Event = _replayer.EventAt(d) };
                continue;
            }
            ulong n = Icount;
            long switches = _replayer.Switches;
            var step = StepInstruction();
            if (step.Kind is not (StopKind.Reached or StopKind.Event)) return step;
            // The scheduler may switch at the step's start count, before the instruction (a quantum that ended there).
            int by = _replayer.Switches != switches && _replayer.LastSwitch is { } s && s.Icount == n ? s.To : vcpu;
            if (by == vcpu) return step;
        }
    }

    /// <summary>
    /// The latest delivery to vCPU <paramref name="vcpu"/> among the trace's events with index in
    /// [<paramref name="from"/>, <paramref name="before"/>): its index and count, or null.
    /// </summary>
    private (long Index, ulong Icount)? LatestDeliveryTo(int vcpu, long from, long before)
    {
        var chunks = Reader.Index;
        if (chunks.Count == 0) return null;
        int c = 0;
        long first = 0; // the index of chunk c's first event
        long k = before - 1;
        while (c < chunks.Count - 1 && first + chunks[c].EventCount <= k) first += chunks[c++].EventCount;
        k = Math.Min(k, first + chunks[c].EventCount - 1); // past the trace's events: from its last one
        for (; c >= 0 && k >= from; c--)
        {
            var events = _replayer.Chunks.TryGet(c) ?? Reader.ReadChunk(chunks[c]);
            for (; k >= first && k >= from; k--)
            {
                var e = events[(int)(k - first)];
                if (IsDelivery(e) && VcpuStamp.Of(e) == vcpu) return (k, e.Icount);
            }
            if (c > 0) first -= chunks[c - 1].EventCount;
        }
        return null;
    }

    /// <summary>
    /// One step of vCPU <paramref name="vcpu"/> back (gdb's reverse-stepi on a thread), the inverse of
    /// <see cref="StepInstruction(int, StepConstraints?)"/>: to the latest state before that vCPU's
    /// last step (its last retired instruction, or a delivery to it), from which stepping it forward
    /// comes back here, whatever the other vCPUs did since. Which vCPU ran when is found by replaying
    /// the windows between snapshots back from here with the scheduler's switches logged (no
    /// instruction-by-instruction stepping). A vCPU that never stepped before here: the beginning of the trace.
    /// The other vCPUs go back too: the latest stop of <paramref name="meanwhile"/>'s breakpoints and watchpoints
    /// between there and here (hit by another vCPU) is where it stops instead, as a reverse-continue would.
    /// </summary>
    public StopInfo ReverseStepInstruction(int vcpu, StepConstraints? meanwhile = null)
    {
        var origin = (Icount, EventIndex);
        var stop = BeforeLastStepOf(vcpu, origin);
        if (meanwhile is not { } c || c.Breakpoints.Count + c.Watchpoints.Count == 0 || stop.Kind is not (StopKind.Reached or StopKind.Event)) return stop;
        // A stop of the others between the landing and here comes first going back: the last one (not the landing itself).
        bool atCount = _atCount;
        var landed = _replayer.Capture();
        c = c with { ToIcount = null, Events = null, UntilScheduled = null };
        var (last, interrupted, _) = ScanWindow(landed, origin, LatestDelivery(origin.Icount, origin.EventIndex) >= 0, c);
        if (interrupted)
        {
            GotoState(origin.Icount, origin.EventIndex);
            return new StopInfo(StopKind.Interrupted, Icount);
        }
        if (last is { Steps: > 0 } hit) return Land(landed, hit, c);
        _replayer.Restore(landed);
        _atCount = atCount;
        return stop;
    }

    private StopInfo BeforeLastStepOf(int vcpu, (ulong Icount, long EventIndex) origin)
    {
        var windowEnd = origin;
        while (true)
        {
            if (WindowStart(windowEnd.Icount) is not { } start) return AtBeginning();
            _replayer.Restore(start);
            long startIndex = EventIndex;
            int owner = CurrentVcpu;
            var log = new List<VcpuSwitch>();
            _replayer.SwitchLog = log;
            StopInfo run;
            try { run = _replayer.Step(new StepConstraints { ToIcount = windowEnd.Icount }); }
            finally { _replayer.SwitchLog = null; }
            _atCount = run.Kind == StopKind.Reached;
            if (run.Kind == StopKind.Interrupted)
            {
                GotoState(origin.Icount, origin.EventIndex);
                return new StopInfo(StopKind.Interrupted, Icount);
            }
            // Its instructions: the counts it held the CPU at (a switch at count c comes before the instruction at c).
            (ulong Icount, long Bound)? instruction = null;
            ulong from = start.Icount;
            foreach (var sw in log.Where(x => x.Icount < windowEnd.Icount).Append(new VcpuSwitch(windowEnd.Icount, -1, windowEnd.EventIndex)))
            {
                if (owner == vcpu && sw.Icount > from) instruction = (sw.Icount - 1, sw.EventIndex);
                from = sw.Icount;
                owner = sw.To;
            }
            var delivery = LatestDeliveryTo(vcpu, startIndex, windowEnd.EventIndex);
            // Deliveries at a count come before the instruction at that count.
            if (instruction is { } i && (delivery is not { } dd || i.Icount >= dd.Icount))
            {
                long k = LatestDelivery(i.Icount, i.Bound);
                return AtBeginning(k >= 0 ? GotoState(i.Icount, k + 1) : Goto(i.Icount));
            }
            if (delivery is { } d) return BeforeDelivery(d.Index, d.Icount);
            windowEnd = (start.Icount, startIndex);
        }
    }

    private static StopInfo AtBeginning(StopInfo stop) => stop.Kind == StopKind.Reached && stop.Icount == 0 ? stop with { Kind = StopKind.BeginningOfTrace } : stop;

    /// <summary>
    /// The latest state before delivery <paramref name="index"/> (at count <paramref name="icount"/>): after
    /// the delivery before it at that count, or the count itself; when the machine made it together
    /// with what came before (deliveries in one go, a vCPU's schedule-in), the state the instruction
    /// before that count ran from.
    /// </summary>
    private StopInfo BeforeDelivery(long index, ulong icount)
    {
        for (long j = index; ;)
        {
            long k = LatestDelivery(icount, j);
            var back = k >= 0 ? GotoState(icount, k + 1) : Goto(icount);
            if (EventIndex <= index) return AtBeginning(back);
            if (k < 0) break;
            j = k;
        }
        if (icount == 0) return AtBeginning();
        long last = LatestDelivery(icount - 1, index);
        return AtBeginning(last >= 0 ? GotoState(icount - 1, last + 1) : Goto(icount - 1));
    }

    /// <summary>
    /// The state at count <paramref name="icount"/> once <paramref name="eventIndex"/> events have
    /// happened: instruction <paramref name="icount"/> itself, then on through the deliveries at that
    /// count, each a stop of its own (as <see cref="StepInstruction"/> makes them).
    /// </summary>
    private StopInfo GotoState(ulong icount, long eventIndex)
    {
        var stop = Goto(icount);
        while (stop.Kind == StopKind.Reached || stop.Kind == StopKind.Event && Icount == icount)
        {
            if (EventIndex >= eventIndex) return stop;
            stop = Step(new StepConstraints { ToIcount = icount + 1, Events = DeliveryStops });
        }
        return stop;
    }

    /// <summary>
    /// Moves to instruction count <paramref name="target"/>: restores the nearest snapshot at or
    /// before it (unless running on from here is shorter) and runs forward, dropping snapshots at
    /// target-2^k on the way so that the next step back is short.
    /// </summary>
    public StopInfo Goto(ulong target)
    {
        SeekKeyframe(target);
        // At the count after a delivery there (a breakpoint on the handler), goto N is still instruction N itself.
        if (target < Icount || _replayer.AtEnd || target == Icount && !_atCount || Ladder.AtOrBefore(target) is { } s && s.Icount > Icount)
        {
            var from = Ladder.AtOrBefore(target) ?? throw new InvalidOperationException("the ladder lost its first snapshot");
            _replayer.Restore(from);
            _atCount = true;
        }
        if (Icount == target) return new StopInfo(StopKind.Reached, Icount);
        foreach (ulong point in ApproachPoints(Icount, target))
        {
            var stop = Step(new StepConstraints { ToIcount = point });
            if (stop.Kind != StopKind.Reached) return stop;
            TakeSnapshot();
        }
        return Step(new StepConstraints { ToIcount = target });
    }

    /// <summary>Restores the latest keyframe at or before <paramref name="target"/> if it is closer than the ladder and the current position.</summary>
    private void SeekKeyframe(ulong target)
    {
        TraceKeyframeInfo? best = null;
        foreach (var k in Keyframes)
            if (k.Icount <= target) best = k;
        if (best == null) return;
        ulong have = Ladder.AtOrBefore(target)?.Icount ?? 0;
        if (Icount <= target && !_replayer.AtEnd) have = Math.Max(have, Icount);
        if (best.Icount > have) LoadKeyframe(best);
    }

    /// <summary>
    /// Restores a keyframe and checks the machine's state hash against the one recorded with it; a
    /// keyframe that is damaged, does not decode or restores to another state is
    /// <see cref="TraceError.DamagedChunk"/> at its offset, never a wrong position.
    /// </summary>
    public void LoadKeyframe(TraceKeyframeInfo keyframe)
    {
        ArgumentNullException.ThrowIfNull(keyframe);
        var raw = Reader.ReadKeyframe(keyframe);
        ReplayState state;
        try
        {
            state = KeyframeCodec.Decode(raw);
            if (state.Icount != keyframe.Icount) throw new InvalidDataException($"it holds instruction {state.Icount}, its index entry says {keyframe.Icount}");
            _replayer.Restore(state);
        }
        catch (Exception e) when (e is InvalidDataException or ArgumentException)
        {
            throw new TraceFormatException(TraceError.DamagedChunk, keyframe.Offset, $"damaged keyframe: {e.Message}", e);
        }
        if (!_replayer.Machine.StateHash().AsSpan().SequenceEqual(keyframe.StateHash.AsSpan()))
        {
            // Never leave the session in a state that is not the trace's: back to the start.
            _replayer.Restore(Ladder.AtOrBefore(0)!);
            _atCount = true;
            throw new TraceFormatException(TraceError.DamagedChunk, keyframe.Offset,
                $"damaged keyframe: the state it restores (instruction {keyframe.Icount}) does not match its recorded hash");
        }
        KeyframesLoaded++;
        _atCount = true;
        TakeSnapshot();
    }

    /// <summary>target - 2^k for every k with 2^k at least the finest gap and the point past <paramref name="from"/>, in order.</summary>
    private IEnumerable<ulong> ApproachPoints(ulong from, ulong target)
    {
        var points = new List<ulong>();
        for (ulong gap = _options.FinestGap; gap != 0 && gap < target - from; gap <<= 1)
            points.Add(target - gap);
        points.Reverse();
        return points;
    }

    /// <summary>
    /// One step back (gdb's reverse-stepi), the exact inverse of <see cref="StepInstruction"/>: after a
    /// delivery, back to the state before it; otherwise back before the last instruction, after any
    /// deliveries at its count (the state that instruction ran from). At instruction 0, the beginning of the trace.
    /// </summary>
    public StopInfo ReverseStepInstruction()
    {
        ulong n = Icount;
        long e = EventIndex;
        for (long j = LatestDelivery(n, e); j >= 0;)
        {
            long k = LatestDelivery(n, j);
            var back = k >= 0 ? GotoState(n, k + 1) : Goto(n);
            if (EventIndex < e) return back.Kind == StopKind.Reached && Icount == 0 ? back with { Kind = StopKind.BeginningOfTrace } : back;
            // Not back: deliveries the machine made in one go are one state (go before the earlier one too),
            // and one made inside the last instruction (a blocking hypercall woken by an event) is part of it.
            j = k;
        }
        if (n == 0)
        {
            Goto(0);
            return new StopInfo(StopKind.BeginningOfTrace, 0);
        }
        long last = LatestDelivery(n - 1, e);
        var stop = last >= 0 ? GotoState(n - 1, last + 1) : Goto(n - 1);
        return stop.Kind == StopKind.Reached && Icount == 0 ? stop with { Kind = StopKind.BeginningOfTrace } : stop;
    }

    /// <summary>
    /// Back to the latest earlier point where <paramref name="c"/> stops a forward run (breakpoints,
    /// watchpoints, events; its ToIcount is ignored): each window between snapshots is replayed
    /// forward and its last hit kept; the first window (from the latest) with a hit wins. A
    /// watchpoint stops before the instruction that changed the value, as gdb expects going back.
    /// </summary>
    public StopInfo ReverseContinue(StepConstraints c)
    {
        ArgumentNullException.ThrowIfNull(c);
        c = c with { ToIcount = null };
        // States in time order are ordered by (count, event index): a stop after a delivery at the
        // origin's count that came before the origin is before it too (docs/time-travel.md "Position").
        var origin = (Icount, EventIndex);
        bool afterDelivery = LatestDelivery(Icount, EventIndex) >= 0;
        var windowEnd = origin;
        while (true)
        {
            if (WindowStart(windowEnd.Icount) is not { } start) return AtBeginning();
            var (last, interrupted, startIndex) = ScanWindow(start, windowEnd, afterDelivery, c);
            if (interrupted)
            {
                GotoState(origin.Icount, origin.EventIndex);
                return new StopInfo(StopKind.Interrupted, Icount);
            }
            if (last is { } hit) return Land(start, hit, c);
            windowEnd = (start.Icount, startIndex);
            afterDelivery = false; // a snapshot is an instruction count's own state
        }
    }

    /// <summary>A reverse scan found no window before the first snapshot: the trace's first instruction.</summary>
    private StopInfo AtBeginning()
    {
        Goto(0);
        return new StopInfo(StopKind.BeginningOfTrace, 0);
    }

    private static bool Before((ulong Icount, long EventIndex) a, (ulong Icount, long EventIndex) b) =>
        a.Icount < b.Icount || a.Icount == b.Icount && a.EventIndex < b.EventIndex;

    /// <summary>
    /// The snapshot a reverse scan of the window ending at <paramref name="windowEnd"/> starts from:
    /// the latest one before it, from a keyframe when one is closer than the ladder, and at most one
    /// snapshot interval back (a longer gap is first run through forward without constraints, which
    /// drops the regular snapshots in it), so each scanned window is short.
    /// </summary>
    private ReplayState? WindowStart(ulong windowEnd)
    {
        var start = Ladder.Before(windowEnd);
        TraceKeyframeInfo? keyframe = null;
        foreach (var k in Keyframes)
            if (k.Icount < windowEnd) keyframe = k;
        if (keyframe != null && (start == null || keyframe.Icount > start.Icount))
        {
            LoadKeyframe(keyframe);
            start = Ladder.Before(windowEnd);
        }
        ulong interval = _options.SnapshotInterval;
        if (start != null && interval != 0 && windowEnd - start.Icount > interval)
        {
            _replayer.Restore(start);
            Step(new StepConstraints { ToIcount = windowEnd - 1 });
            start = Ladder.Before(windowEnd);
        }
        return start;
    }

    /// <summary>
    /// Replays [start, end) under <paramref name="c"/> and finds its last forward stop before
    /// <paramref name="end"/>: the stop, where going back lands for it, and how many forward
    /// stops from <paramref name="start"/> reach it (0: the start itself is on a breakpoint).
    /// </summary>
    /// <param name="afterDelivery">The end is a state after a delivery at its count: the window runs on through that count's deliveries.</param>
    private ((StopInfo Stop, ulong Position, long PositionIndex, int Steps)? Last, bool Interrupted, long StartIndex) ScanWindow(
        ReplayState start, (ulong Icount, long EventIndex) end, bool afterDelivery, StepConstraints c)
    {
        _replayer.Restore(start);
        long startIndex = EventIndex;
        (StopInfo, ulong, long, int)? last = null;
        if (Before((Icount, startIndex), end) && _replayer.BreakpointHere(c.Breakpoints) is { } atStart)
            last = (new StopInfo(StopKind.Breakpoint, Icount) { Breakpoint = atStart }, Icount, startIndex, 0);
        var run = c with { ToIcount = afterDelivery ? end.Icount + 1 : end.Icount };
        for (int steps = 1; ; steps++)
        {
            var stop = _replayer.Step(run);
            switch (stop.Kind)
            {
                case StopKind.Interrupted:
                    return (last, true, startIndex);
                case StopKind.Breakpoint or StopKind.Event:
                    if (Before((stop.Icount, EventIndex), end)) last = (stop, stop.Icount, EventIndex, steps);
                    continue;
                case StopKind.Watchpoint:
                    var position = (stop.StepStartIcount ?? stop.Icount, stop.StepStartEventIndex ?? EventIndex);
                    if (Before(position, end)) last = (stop, position.Item1, position.Item2, steps);
                    continue;
                default:
                    return (last, false, startIndex);
            }
        }
    }

    /// <summary>Moves onto a hit found by <see cref="ScanWindow"/>: replays the window to that stop again (a watchpoint: to the state before the write).</summary>
    private StopInfo Land(ReplayState start, (StopInfo Stop, ulong Position, long PositionIndex, int Steps) hit, StepConstraints c)
    {
        if (hit.Stop.Kind == StopKind.Watchpoint)
        {
            GotoState(hit.Position, hit.PositionIndex);
            return hit.Stop with { Icount = Icount };
        }
        _replayer.Restore(start);
        var run = c with { ToIcount = hit.Stop.Icount + 1 };
        for (int i = 0; i < hit.Steps; i++) _replayer.Step(run);
        _atCount = false;
        return hit.Stop with { Icount = Icount };
    }

    /// <summary>
    /// Back to the call that entered the current function (gdb's reverse-finish, at instruction
    /// level): the last entry of the function containing EIP (by the guest's symbols) with the
    /// stack pointer at or above the current one, then one instruction back onto the call.
    /// </summary>
    public StopInfo ReverseFinish()
    {
        uint pc = _replayer.View.Pc;
        if (Symbols.Lookup(pc) is not { } found)
            throw new InvalidOperationException($"no symbol covers 0x{pc:x8}, so the function's entry is unknown");
        uint start = found.Symbol.Address;
        // The hypercall page is 32-byte stubs, each called on its own (docs/xen-abi.md §1): the stub is the function.
        if (found.Symbol.Name == "hypercall_page") start += found.Offset & ~31u;
        if (pc != start)
        {
            uint esp = _replayer.Machine.Cpu.Esp;
            var entry = new Breakpoint(-1, start) { Condition = cpu => cpu.Esp >= esp };
            var stop = ReverseContinue(new StepConstraints { Breakpoints = [entry] });
            if (stop.Kind != StopKind.Breakpoint) return stop;
        }
        return ReverseStepInstruction();
    }
}
