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
    private readonly ulong _pollAt;
    private readonly Func<bool> _stopHere;

    /// <param name="checkpoints">The checkpoint schedule (its emit checks against the recording).</param>
    /// <param name="pollAt">A count the machine must stop at (where the recording stopped, or --to): ulong.MaxValue for none.</param>
    /// <param name="stopHere">Asked at each stop site: true where the replay ends (XenMachine.StopSiteVisit).</param>
    /// <param name="formatVersion">The trace's format version (format 1 did not record where console input entered).</param>
    public ReplayInputs(InputQueue queue, Checkpoints checkpoints, ulong pollAt, bool chaos, Action<string> diverged, Func<bool> stopHere, int formatVersion)
    {
        _console = new ConsoleInputReplayer(queue, diverged) { Legacy = formatVersion < 2 };
        _chaos = chaos ? new ChaosReplayer(queue, diverged) : null;
        _checkpoints = checkpoints;
        _pollAt = pollAt;
        _stopHere = stopHere;
    }

    public bool Diverged { get; set; }

    /// <summary>Set when a prefix (a trace that ends early) has been used up: the replay ends at the next stop site.</summary>
    public bool PrefixEnded { get; set; }

    public bool StopRequested => Diverged || PrefixEnded || _stopHere();

    public ulong NextPoll(ulong icount) =>
        Math.Min(_pollAt >= icount ? _pollAt : ulong.MaxValue, Math.Min(_console.NextPoll(icount), _checkpoints.NextPoll(icount)));

    public bool Poll(XenMachine machine, bool blocked)
    {
        _checkpoints.Poll(machine);
        return _console.Poll(machine);
    }

    public bool WaitForInput(XenMachine machine) => _console.WaitForInput(machine);

    public ulong TimerDelay(ulong icount) => _chaos?.TimerDelay(icount) ?? 0;
}
