using System.Runtime.CompilerServices;
using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Inputs;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Trace;

namespace Replayvisor.Replay;

/// <summary>
/// Feeds a replay through the replay halves of the input sources (src/Engine/Inputs): recorded
/// console input and chaos delays at their counts, checkpoints, and the --to stop.
/// </summary>
public sealed class ReplayInputs : IRunInputs
{
    private readonly ConsoleInputReplayer _console;
    private readonly ChaosReplayer? _chaos;
    private readonly Checkpoints _checkpoints;
    private readonly ulong _stopAt;
    private readonly XenMachine _machine;
    private readonly X86Cpu _cpu;
    private readonly ShutdownEvent? _stoppedAt;

    /// <param name="checkpoints">The checkpoint schedule (its emit checks against the recording).</param>
    /// <param name="stopAt">A count the machine must stop and poll at (where an interrupted recording stopped); ulong.MaxValue for none.</param>
    /// <param name="stoppedAt">For a recording stopped by Ctrl-C/SIGTERM: its closing event; the run stops at the same count and stop site (XenMachine.StopSites).</param>
    /// <param name="machine">The machine replaying (its count and stop site; read directly at every stop, no delegate).</param>
    public ReplayInputs(InputQueue queue, Checkpoints checkpoints, ulong stopAt, bool chaos, Action<string> diverged,
        XenMachine machine, ShutdownEvent? stoppedAt)
    {
        _console = new ConsoleInputReplayer(queue, diverged);
        _chaos = chaos ? new ChaosReplayer(queue, diverged) : null;
        _checkpoints = checkpoints;
        _stopAt = stopAt;
        _machine = machine;
        _cpu = machine.Cpu;
        _stoppedAt = stoppedAt;
        UpdateStopFrom();
    }

    public bool Diverged
    {
        get => _diverged;
        set { _diverged = value; UpdateStopFrom(); }
    }

    /// <summary>A format-1 trace: its console input does not say where in the run loop it entered.</summary>
    public bool LegacyConsoleInput { set => _console.Legacy = value; }

    /// <summary>Set by a stepping session to end the current run at the next instruction boundary (a breakpoint, an event stop).</summary>
    public bool Break
    {
        get => _break;
        set { _break = value; UpdateStopFrom(); }
    }

    /// <summary>Set once a prefix (a trace that ends early) has been used up: the replay ends.</summary>
    public bool PrefixEnded
    {
        get => _prefixEnded;
        set { _prefixEnded = value; UpdateStopFrom(); }
    }

    private bool _diverged, _break, _prefixEnded;
    private ulong _sliceEnd = ulong.MaxValue;

    /// <summary>
    /// The replayer's slice end (<see cref="Stepping.TraceReplayer.SliceLength"/>): the run stops at the
    /// first stop at or after it that the recording made too (a poll, a timer: XenMachine.Run checks
    /// <see cref="StopRequested"/> at the top of its loop, after every CPU run), never in between,
    /// so slicing adds no stop of its own. ulong.MaxValue: none.
    /// </summary>
    public ulong SliceEnd
    {
        get => _sliceEnd;
        set { _sliceEnd = value; UpdateStopFrom(); }
    }

    /// <summary>
    /// Diverged, or at a stop of <see cref="Break"/>, <see cref="PrefixEnded"/>, the slice end or the
    /// recorded stop. The run loop asks at every stop (several times per timer tick of a guest), so it
    /// is one compare: the count from which any of them can hold (<see cref="UpdateStopFrom"/>), and only
    /// from there the full test.
    /// </summary>
    public bool StopRequested
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _cpu.Icount >= _stopFrom && StopNow;
    }

    private bool StopNow => _diverged || _break || _prefixEnded || _cpu.Icount >= _sliceEnd || AtRecordedStop;

    /// <summary>0 while a flag is set; otherwise the slice end or the recorded stop's count, whichever comes first.</summary>
    private ulong _stopFrom;

    private void UpdateStopFrom() =>
        _stopFrom = _diverged || _break || _prefixEnded ? 0 : Math.Min(_sliceEnd, _stoppedAt?.Icount ?? ulong.MaxValue);

    /// <summary>At or past the stop site where the recording was stopped on request.</summary>
    private bool AtRecordedStop
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _stoppedAt is { } s && (_cpu.Icount > s.Icount || (_cpu.Icount == s.Icount && _machine.StopSites.Current >= s.StopSite));
    }

    /// <summary>
    /// Besides the recorded inputs' counts, the same periodic polls as the recording
    /// (<see cref="PollPeriod"/>): they inject nothing, but give the CPU the recording's slices and
    /// so its compiled regions.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong NextPoll(ulong icount)
    {
        if (Break) return icount;
        ulong next = Math.Min(Math.Min(PollPeriod.After(icount), _stopAt >= icount ? _stopAt : ulong.MaxValue), _checkpoints.NextPoll(icount));
        // Console input due before that stop needs it sooner; none can be when no input at all lies before it.
        return NoInputBefore(next) ? next : Math.Min(next, _console.NextPoll(icount));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Poll(XenMachine machine, bool blocked)
    {
        _checkpoints.Poll(machine);
        ulong icount = machine.Icount;
        return !NoInputBefore(icount == ulong.MaxValue ? icount : icount + 1) && _console.Poll(machine);
    }

    /// <summary>
    /// True when no recorded input lies before <paramref name="icount"/>, known without reading on (the
    /// cursor has met the end of its inputs) or without waiting for a chunk being read (InputCursor.NoInputBefore):
    /// the console replayer would find none due, and asking it would look through the chunks ahead now.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool NoInputBefore(ulong icount) => Cursor is { } c && c.NoInputBefore(icount);

    /// <summary>
    /// The input cursor behind the queue, when the queue reads one (a replayer's; null otherwise).
    /// While it knows that no input lies before the next stop (it has none left, or the chunks it has
    /// not looked through yet all start later), no console input can be due: <see cref="NextPoll"/> and
    /// <see cref="Poll"/> skip asking the queue (what it would answer: none due), so the replay does not
    /// wait for chunks still being read on the chunk reader thread before it runs.
    /// </summary>
    public Streaming.InputCursor? Cursor { get; init; }

    public bool WaitForInput(XenMachine machine) => _console.WaitForInput(machine);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong TimerDelay(ulong icount) => _chaos?.TimerDelay(icount) ?? 0;

    /// <summary>
    /// These inputs as a struct type argument of XenMachine.Run&lt;TInputs&gt;: the replay's run loop
    /// is compiled for them, with the stop checks inlined into it (not calls through IRunInputs).
    /// </summary>
    public readonly struct Direct(ReplayInputs inputs) : IRunInputs
    {
        public ulong NextPoll(ulong icount) => inputs.NextPoll(icount);
        public bool Poll(XenMachine machine, bool blocked) => inputs.Poll(machine, blocked);
        public bool WaitForInput(XenMachine machine) => inputs.WaitForInput(machine);
        public ulong TimerDelay(ulong icount) => inputs.TimerDelay(icount);
        public bool StopRequested => inputs.StopRequested;
    }
}
