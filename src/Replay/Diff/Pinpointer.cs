using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Trace;

namespace Replayvisor.Replay.Diff;

/// <summary>How to re-execute the two runs.</summary>
public sealed record PinpointOptions
{
    /// <summary>State hashes taken per run in each narrowing pass.</summary>
    public int ProbesPerPass { get; init; } = 32;
    /// <summary>
    /// Use only the checkpoints at multiples of this count, as a recording with this checkpoint
    /// interval would have taken (a multiple of the recordings' own interval): `bench --diff`
    /// measures the pinpoint cost per interval from one pair of traces this way.
    /// </summary>
    public ulong? CheckpointInterval { get; init; }
    /// <summary>
    /// Start each run from the trace's last keyframe at or before the window's start (`replayvisor
    /// index`, `record --keyframe-interval`) instead of from instruction 0; off, both replay from 0
    /// (`bench --diff` compares the two).
    /// </summary>
    public bool UseKeyframes { get; init; } = true;
    /// <summary>Called once both runs stand at the window's start (`bench --diff` times the search from there).</summary>
    public Action? WindowReached { get; init; }
    /// <summary>Test hook: wraps run A's (or B's) replay inputs at the start of each pass, e.g. to inject an engine perturbation into the re-execution.</summary>
    public Func<IRunInputs, IRunInputs>? WrapInputsA { get; init; }
    public Func<IRunInputs, IRunInputs>? WrapInputsB { get; init; }
}

public sealed class PinpointException(string message) : Exception(message);

/// <summary>One run at the last instruction boundary where both states still agree.</summary>
public sealed record MachineView(uint Eip, string Instruction);

/// <summary>
/// The first instruction after which the two runs' architectural states differ: executed at
/// <see cref="Icount"/> (both states equal before it, different after it). The re-execution
/// started at <see cref="StartIcount"/> (the last checkpoint both recordings agree on) for a
/// window ending at <see cref="EndIcount"/> (just past the first recorded output that differs);
/// <see cref="WindowInstructions"/> of the <see cref="InstructionsExecuted"/> (both runs) were
/// spent inside the window, the rest (<see cref="ReachInstructions"/>) reaching its start, each
/// run from <see cref="ReachedFromA"/> / <see cref="ReachedFromB"/> (a keyframe's count, or 0).
/// </summary>
public sealed record PinpointResult(
    ulong Icount, MachineView A, MachineView B, IReadOnlyList<RegisterDifference> Registers, IReadOnlyList<MemoryDifference> Memory,
    ulong StartIcount, int Passes, ulong InstructionsExecuted)
{
    public ulong EndIcount { get; init; }
    public ulong WindowInstructions { get; init; }
    /// <summary>Instructions both runs spent reaching the window's start (InstructionsExecuted − WindowInstructions).</summary>
    public ulong ReachInstructions => InstructionsExecuted - WindowInstructions;
    /// <summary>The count run A (B) was started from to reach the window: the keyframe it was restored from, or 0.</summary>
    public ulong ReachedFromA { get; init; }
    public ulong ReachedFromB { get; init; }
    /// <summary>
    /// Why run A's (B's) last keyframe at or before the window's start could not be used, e.g.
    /// "were written by a different snapshot layout" (an index made by another engine build); null
    /// when it was used or the trace has none there. The run then started from an earlier keyframe
    /// or from 0 (<see cref="ReachedFromA"/>), which costs time but not correctness.
    /// </summary>
    public string? KeyframesRefusedA { get; init; }
    public string? KeyframesRefusedB { get; init; }
    /// <summary>The parts of the machine state that differ after the instruction (StateDifference.Parts).</summary>
    public IReadOnlyList<string> StateParts { get; init; } = [];
}

/// <summary>
/// Re-executes two recordings of one guest image to find the first instruction whose result
/// differs (docs/diff.md "Pinpointing"). Both runs go to the last checkpoint the recordings agree
/// on before their first differing output; from there each pass runs them side by side to evenly
/// spaced counts of the window, comparing state hashes (XenMachine.StateHash), and snapshots both
/// at each count where they still agree; the next pass restores the last such snapshot, so every
/// pass after the first costs a fraction of the one before and the whole search about one window
/// (at most one checkpoint interval) per run, wherever the window lies in the trace. When the
/// window is one instruction wide both states are compared register by register and byte by byte.
/// </summary>
public static class Pinpointer
{
    public static PinpointResult Find(DiffSide a, DiffSide b, PinpointOptions options)
    {
        var rawA = Checkpoints(a.Raw, options.CheckpointInterval);
        var rawB = Checkpoints(b.Raw, options.CheckpointInterval);
        ulong last = Math.Min(a.FinalIcount, b.FinalIcount);
        var observed = TraceDiff.FirstDivergentEvent(rawA.Where(e => e is not InputEvent).ToList(), rawB.Where(e => e is not InputEvent).ToList());
        ulong end = observed == null ? last : Math.Min(observed.Icount + 1, last);
        if (end == 0) throw new PinpointException("a run ends before its first instruction: nothing to re-execute");
        var (ra, rb, lo, spent) = Start(a, b, rawA, rawB, end, options);
        ulong start = lo, reached = spent + ra.Executed + rb.Executed;
        options.WindowReached?.Invoke();
        ulong hi = end;
        int passes = 1;
        var sa = ra.Capture();
        var sb = rb.Capture();
        ulong saved = lo;
        while (hi - lo > 1)
        {
            Return(ra, rb, sa, sb, lo);
            passes++;
            ulong? differs = null;
            foreach (ulong p in Spread(lo, hi, options.ProbesPerPass))
            {
                if (!Same(ra, rb, p)) { differs = p; break; }
                lo = p;
                if (p - saved >= CaptureDistance) (saved, sa, sb) = (p, ra.Capture(), rb.Capture());
            }
            if (differs is ulong d) hi = d;
            else if (hi < last) hi = last; // the states still agree past the first differing output: look up to the end once
            else throw new PinpointException($"the two runs' machine states agree up to instruction {last}: the difference is not in architectural state");
        }
        Return(ra, rb, sa, sb, lo);
        var symbols = GuestSymbols.FromImage(a.Reader.GuestImage.Span);
        var viewA = View(ra, symbols);
        var viewB = View(rb, symbols);
        if (!ra.RunTo(lo + 1) | !rb.RunTo(lo + 1))
            throw new PinpointException($"a re-execution ended before instruction {lo + 1}");
        passes++;
        ulong executed = spent + ra.Executed + rb.Executed;
        return new PinpointResult(lo, viewA, viewB,
            StateDifference.Registers(ra.Machine.Cpu.Snapshot(), rb.Machine.Cpu.Snapshot()),
            StateDifference.Memory(ra.Machine.Domain.Memory.SnapshotBytes(), rb.Machine.Domain.Memory.SnapshotBytes(), StateDifference.KernelVirtual(ra.Machine), symbols),
            start, passes, executed)
        {
            EndIcount = end,
            WindowInstructions = executed - reached,
            StateParts = StateDifference.Parts(ra.Machine, rb.Machine),
            ReachedFromA = ra.StartedFrom,
            ReachedFromB = rb.StartedFrom,
            KeyframesRefusedA = ra.KeyframesRefused,
            KeyframesRefusedB = rb.KeyframesRefused,
        };
    }

    /// <summary>The highest checkpoint at or before <paramref name="before"/> with the same count and hash in both recordings (0 when none).</summary>
    public static ulong LastCommonCheckpoint(IEnumerable<TraceEvent> a, IEnumerable<TraceEvent> b, ulong before) =>
        CommonCheckpoints(a, b, before).DefaultIfEmpty(0UL).Max();

    private static IEnumerable<ulong> CommonCheckpoints(IEnumerable<TraceEvent> a, IEnumerable<TraceEvent> b, ulong before)
    {
        var hb = new Dictionary<ulong, EquatableArray<byte>>();
        foreach (var c in b.OfType<CheckpointEvent>()) if (c.Icount <= before) hb[c.Icount] = c.StateHash;
        return a.OfType<CheckpointEvent>().Where(c => c.Icount <= before && hb.TryGetValue(c.Icount, out var h) && h == c.StateHash).Select(c => c.Icount);
    }

    private static List<TraceEvent> Checkpoints(IReadOnlyList<TraceEvent> events, ulong? interval) =>
        interval is ulong n and > 0 ? events.Where(e => e is not CheckpointEvent c || c.Icount % n == 0).ToList() : [.. events];

    /// <summary>
    /// Both runs at the latest common checkpoint before <paramref name="end"/> where their
    /// re-executed states agree too (a checkpoint hashes the state before the inputs at its
    /// count, a re-execution stops after them), trying earlier ones and finally 0 otherwise. Each
    /// run starts from its trace's last usable keyframe at or before that checkpoint when it has one.
    /// </summary>
    private static (Rerun A, Rerun B, ulong Start, ulong Spent) Start(DiffSide a, DiffSide b, List<TraceEvent> rawA, List<TraceEvent> rawB, ulong end, PinpointOptions options)
    {
        ulong spent = 0;
        foreach (ulong start in CommonCheckpoints(rawA, rawB, end - 1).Where(c => c < end).OrderDescending().Append(0UL))
        {
            var ra = StartRun(a, start, options.WrapInputsA, options.UseKeyframes);
            var rb = StartRun(b, start, options.WrapInputsB, options.UseKeyframes);
            if (Same(ra, rb, start)) return (ra, rb, start, spent);
            spent += ra.Executed + rb.Executed;
        }
        throw new PinpointException("the two runs' machine states differ from their first instruction: " + WhyApartFromTheStart(a, b, rawA, rawB));
    }

    /// <summary>Why two runs of one image differ at instruction 0: their command lines, or their inputs at 0 (a host-clock recording reads the host's time there).</summary>
    private static string WhyApartFromTheStart(DiffSide a, DiffSide b, List<TraceEvent> rawA, List<TraceEvent> rawB)
    {
        if ((a.Reader.Header.GetOption(RunOptionKeys.Cmdline) ?? "") != (b.Reader.Header.GetOption(RunOptionKeys.Cmdline) ?? ""))
            return "their command lines differ";
        static List<TraceEvent> InputsAt0(List<TraceEvent> events) => events.Where(e => e is InputEvent && e.Icount == 0).ToList();
        if (TraceDiff.FirstDivergentEvent(InputsAt0(rawA), InputsAt0(rawB)) is { } d)
        {
            bool host = a.Reader.Header.GetOption(RunOptionKeys.Clock) == "host" || b.Reader.Header.GetOption(RunOptionKeys.Clock) == "host";
            return $"their inputs at instruction 0 differ ({Input(d.A)} / {Input(d.B)}){(host ? "; a host-clock recording starts at the host's time" : "")}";
        }
        return "their recordings start from different states";

        static string Input(TraceEvent? e) => e == null ? "none" : Replayvisor.Replay.Text.EventText.Text(e).TrimStart() is var t && t.IndexOf(' ', StringComparison.Ordinal) is int i and > 0 ? t[(i + 1)..] : "";
    }

    /// <summary>A re-execution of <paramref name="side"/> standing at its last keyframe at or before <paramref name="start"/> that restores (at 0 without one).</summary>
    private static Rerun StartRun(DiffSide side, ulong start, Func<IRunInputs, IRunInputs>? wrap, bool useKeyframes)
    {
        var run = new Rerun(side.Reader, side.Raw, wrap);
        if (useKeyframes)
            foreach (var k in side.Reader.Keyframes.Where(k => k.Icount > 0 && k.Icount <= start).OrderByDescending(k => k.Icount))
            {
                if (run.TryStartFrom(k, out string? refused)) break;
                run.KeyframesRefused ??= refused;
            }
        return run;
    }

    /// <summary>
    /// A snapshot costs about as much as running a few hundred thousand instructions (it walks
    /// every frame and copies the model's tables), so agreeing probes closer than this to the last
    /// snapshot are reached again by running forward from it instead.
    /// </summary>
    private const ulong CaptureDistance = 1 << 18;

    /// <summary>Restores both runs to their last snapshots and runs them forward to <paramref name="lo"/>.</summary>
    private static void Return(Rerun a, Rerun b, Rerun.Saved sa, Rerun.Saved sb, ulong lo)
    {
        a.Restore(sa);
        b.Restore(sb);
        if (!a.RunTo(lo) | !b.RunTo(lo)) throw new PinpointException($"a re-execution ended before instruction {lo}, where it had been before");
    }

    /// <summary>Runs both to <paramref name="icount"/> and compares their state hashes; false when either cannot get there.</summary>
    private static bool Same(Rerun a, Rerun b, ulong icount) =>
        a.RunTo(icount) & b.RunTo(icount) && a.Machine.StateHash().AsSpan().SequenceEqual(b.Machine.StateHash());

    private static List<ulong> Spread(ulong lo, ulong hi, int n)
    {
        var list = new SortedSet<ulong>();
        ulong width = hi - lo;
        for (int i = 1; i <= n; i++)
        {
            ulong p = lo + (ulong)((UInt128)width * (ulong)i / (ulong)(n + 1));
            if (p > lo && p < hi) list.Add(p);
        }
        list.Add(hi);
        return [.. list];
    }

    private static MachineView View(Rerun r, GuestSymbols symbols)
    {
        var cpu = r.Machine.Cpu;
        return new MachineView(cpu.Eip, DivergenceReport.Disassemble(cpu, cpu.Eip, 1, symbols).FirstOrDefault()?.TrimStart('=', '>', ' ') ?? "");
    }
}
