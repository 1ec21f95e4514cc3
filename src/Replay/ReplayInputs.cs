using Replayvisor.Engine.Inputs;
using Replayvisor.Engine.Machine;

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
    private readonly Func<ulong> _icount;
    private readonly bool _stopThere;

    /// <param name="checkpoints">The checkpoint schedule (its emit checks against the recording).</param>
    /// <param name="stopAt">Where the replay ends; with <paramref name="stopThere"/> the run reports Stopped there, as an interrupted recording did.</param>
    public ReplayInputs(InputQueue queue, Checkpoints checkpoints, ulong stopAt, bool chaos, Action<string> diverged,
        Func<ulong> icount, bool stopThere)
    {
        _console = new ConsoleInputReplayer(queue, diverged);
        _chaos = chaos ? new ChaosReplayer(queue, diverged) : null;
        _checkpoints = checkpoints;
        _stopAt = stopAt;
        _icount = icount;
        _stopThere = stopThere;
    }

    public bool Diverged { get; set; }

    /// <summary>A format-1 trace: its console input does not say where in the run loop it entered.</summary>
    public bool LegacyConsoleInput { set => _console.Legacy = value; }

    /// <summary>Set by a stepping session to end the current run at the next instruction boundary (a breakpoint, an event stop).</summary>
    public bool Break { get; set; }

    public bool StopRequested => Diverged || Break || (_stopThere && _icount() >= _stopAt);

    public ulong NextPoll(ulong icount) => Break ? icount : Math.Min(_stopAt, Math.Min(_console.NextPoll(icount), _checkpoints.NextPoll(icount)));

    public bool Poll(XenMachine machine, bool blocked)
    {
        _checkpoints.Poll(machine);
        return _console.Poll(machine);
    }

    public bool WaitForInput(XenMachine machine) => _console.WaitForInput(machine);

    public ulong TimerDelay(ulong icount) => _chaos?.TimerDelay(icount) ?? 0;
}
