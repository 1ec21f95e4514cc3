namespace Replayvisor.Engine.Machine;

/// <summary>
/// Numbers the points where <see cref="XenMachine.Run"/> may end a run on request (Ctrl-C, SIGTERM,
/// a replay's target), so a recording stopped at one can be replayed to the very same one
/// (docs/record-replay.md "Stop sites"). Several loop iterations can pass at one instruction
/// count (a blocked vCPU idling, timers firing, input entering); at a count, iteration i offers
/// site 2i at the top of the loop and site 2i+1 at its poll (or after a wait for input found none).
/// A run that returns and is resumed continues the numbering as the uninterrupted run would have.
/// </summary>
public sealed class StopSites
{
    private StopSiteState _s = new(ulong.MaxValue, 0, false);

    /// <summary>The site the machine is at (meaningful when asked from <see cref="IRunInputs.StopRequested"/>).</summary>
    public int Current { get; private set; }

    /// <summary>The top of a loop iteration at <paramref name="icount"/>.</summary>
    public void Top(ulong icount)
    {
        if (icount != _s.Icount) _s = new(icount, 0, true);
        else if (_s.Fresh) _s = _s with { Iteration = _s.Iteration + 1 };
        _s = _s with { Fresh = true };
        Current = 2 * _s.Iteration;
    }

    /// <summary>The iteration's second site: its poll, or the end of a wait for input that found none.</summary>
    public void Second() => Current = 2 * _s.Iteration + 1;

    /// <summary>The run returns before this iteration did anything (a stop at the top, the instruction limit): resuming redoes it.</summary>
    public void Redo() => _s = _s with { Fresh = false };

    /// <summary>Part of a machine snapshot.</summary>
    public StopSiteState State
    {
        get => _s;
        set => _s = value;
    }
}

/// <summary>Where <see cref="StopSites"/> stands: the count, the loop iteration at it, and whether the next top starts a new one.</summary>
public readonly record struct StopSiteState(ulong Icount, int Iteration, bool Fresh);
