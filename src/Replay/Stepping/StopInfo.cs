using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Trace;

namespace Replayvisor.Replay.Stepping;

/// <summary>Why a step or a run stopped.</summary>
public enum StopKind
{
    /// <summary>The requested instruction count was reached.</summary>
    Reached,
    Breakpoint,
    Watchpoint,
    /// <summary>A recorded event matched the event filter.</summary>
    Event,
    /// <summary>The replay reached the end of the trace (the guest's recorded end, or the end of an incomplete trace).</summary>
    EndOfTrace,
    /// <summary>Going backwards reached instruction 0.</summary>
    BeginningOfTrace,
    /// <summary>The replay parted from the recording; see the session's divergence report.</summary>
    Diverged,
    /// <summary>Stopped on request (Ctrl-C, a gdb interrupt).</summary>
    Interrupted,
}

/// <summary>One watchpoint hit: the watch, the address range, and the value before and after (little-endian, up to 8 bytes).</summary>
public sealed record WatchHit(Watchpoint Watch, WatchKind Access, ulong OldValue, ulong NewValue);

/// <summary>Where and why a run stopped.</summary>
public sealed record StopInfo(StopKind Kind, ulong Icount)
{
    public Breakpoint? Breakpoint { get; init; }
    public WatchHit? Watch { get; init; }
    public TraceEvent? Event { get; init; }
    /// <summary>For a watchpoint hit: the count before the step that hit it (the state still holding the old value).</summary>
    public ulong? StepStartIcount { get; init; }
    /// <summary>At the end of the trace: how the machine ended.</summary>
    public MachineExit? Exit { get; init; }
}
