using Replayvisor.Engine.Inputs;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Session;
using Replayvisor.Engine.Trace;
using Replayvisor.Replay.Keyframes;

namespace Replayvisor.Replay.Diff;

/// <summary>
/// One recording re-executed for <see cref="Pinpointer"/>: the machine rebuilt from the trace's
/// guest image, fed the recording's inputs at their counts without verifying what it produces
/// (the point is to see where it parts from the other run), stopped at chosen counts, and
/// returned to an earlier count by restoring a <see cref="Saved"/> state: the machine's pages
/// shared copy-on-write (XenMachine.SnapshotSharingPages), the input position and the trace
/// clock. Stops are run limits, which resume exactly as the uninterrupted run continues
/// (XenMachine.Run), so stopping does not change the run.
/// </summary>
internal sealed class Rerun
{
    /// <summary>The re-execution at one instruction boundary.</summary>
    public sealed record Saved(MachineSnapshot Machine, int Input, (ulong Last, ulong LastIcount)? Clock);

    private readonly TraceReader _reader;
    private readonly InputList _inputs;
    private readonly ReplayingClock? _clock;
    private readonly ReplayInputs _replay;
    private readonly Func<IRunInputs, IRunInputs>? _wrap;
    private IRunInputs _current;

    /// <param name="wrap">Wraps the replay inputs at the start of every pass (a test's engine perturbation); it sees the run from where the pass starts.</param>
    public Rerun(TraceReader reader, IReadOnlyList<TraceEvent> events, Func<IRunInputs, IRunInputs>? wrap)
    {
        _reader = reader;
        _inputs = new InputList(events.OfType<InputEvent>().ToList());
        var queue = new InputQueue(_inputs);
        var options = RunOptions.FromHeader(reader.Header);
        static void Ignore(string what) { } // a re-execution follows its recording's inputs; it does not verify them
        if (options.Clock == ClockKind.Host) _clock = new ReplayingClock(queue, Ignore);
        Machine = new XenMachine(reader.GuestImage.ToArray(), options.Machine(_clock));
        var machine = Machine;
        _replay = new ReplayInputs(queue, new Checkpoints(0, _ => { }), ulong.MaxValue, options.ChaosSeed != null, Ignore, machine, null)
        {
            LegacyConsoleInput = reader.FormatVersion < 2,
        };
        _wrap = wrap;
        _current = wrap?.Invoke(_replay) ?? _replay;
    }

    public XenMachine Machine { get; }

    public ulong Icount => Machine.Icount;

    /// <summary>Instructions this re-execution has run, over all passes.</summary>
    public ulong Executed { get; private set; }

    /// <summary>The count it started from: a keyframe's (<see cref="TryStartFrom"/>), else 0.</summary>
    public ulong StartedFrom { get; private set; }

    /// <summary>
    /// Starts from a keyframe of the trace (docs/trace-format.md "Keyframe chunk payload"): its
    /// machine state, input position and trace clock, as a replay stood there. A keyframe is a
    /// stop at a run limit like <see cref="RunTo"/>'s, so the run continues from it exactly as
    /// the one from instruction 0. False, and nothing changed, when it was written with another
    /// snapshot layout, does not decode, or restores to another state than its recorded hash;
    /// <paramref name="refused"/> then says which, as "keyframes of a.rvt ..." continues.
    /// </summary>
    public bool TryStartFrom(TraceKeyframeInfo keyframe, out string? refused)
    {
        refused = null;
        if (Machine.Icount != 0) return false;
        if (keyframe.Layout != KeyframeCodec.Layout)
        {
            refused = "were written by a different snapshot layout";
            return false;
        }
        var initial = Capture();
        try
        {
            var state = KeyframeCodec.Decode(_reader.ReadKeyframe(keyframe));
            if (state.Icount != keyframe.Icount || state.Exit != null || state.Inputs.Taken > _inputs.Count)
            {
                refused = "do not fit this trace (count, exit or input position)";
                return false;
            }
            Restore(new Saved(state.Machine, (int)state.Inputs.Taken, state.Clock));
        }
        catch (Exception e) when (e is InvalidDataException or ArgumentException or TraceFormatException)
        {
            refused = "do not decode";
            return false;
        }
        if (!Machine.StateHash().AsSpan().SequenceEqual(keyframe.StateHash.AsSpan()))
        {
            Restore(initial);
            refused = "restore to another state than the one they recorded";
            return false;
        }
        StartedFrom = keyframe.Icount;
        return true;
    }

    /// <summary>Why the last keyframe at or before the window's start could not be used (null when it was, or when there was none).</summary>
    public string? KeyframesRefused { get; set; }

    /// <summary>Runs forward to <paramref name="icount"/>; false when the run ends (or idles for good) before it.</summary>
    public bool RunTo(ulong icount)
    {
        while (Machine.Icount < icount)
        {
            ulong before = Machine.Icount;
            var exit = Machine.Run(icount - before, _current);
            Executed += Machine.Icount - before;
            if (exit.Kind != MachineExitKind.InstructionLimit) return Machine.Icount == icount;
        }
        return Machine.Icount == icount;
    }

    public Saved Capture() => new(Machine.SnapshotSharingPages(), _inputs.Next, _clock?.State);

    /// <summary>Returns to <paramref name="s"/> and starts a new pass there.</summary>
    public void Restore(Saved s)
    {
        Machine.Restore(s.Machine);
        _inputs.Next = s.Input;
        if (_clock != null && s.Clock is { } clock) _clock.State = clock;
        _current = _wrap?.Invoke(_replay) ?? _replay;
    }

    /// <summary>The recorded inputs in file order (a keyframe's input cursor counts them the same way), with a position that can be set back.</summary>
    private sealed class InputList(List<InputEvent> events) : IInputStream
    {
        public int Next { get; set; }
        public int Count => events.Count;
        public InputEvent? Peek => Next < events.Count ? events[Next] : null;
        public void Take() => Next++;
    }
}
