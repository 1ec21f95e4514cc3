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
    /// <summary>The vCPU <see cref="StepConstraints.UntilScheduled"/> names got the CPU.</summary>
    Scheduled,
}

/// <summary>A context switch the replay made: at count <paramref name="Icount"/>, to vCPU <paramref name="To"/>, when <paramref name="EventIndex"/> of the trace's events had happened (before the incoming vCPU's schedule-in).</summary>
public readonly record struct VcpuSwitch(ulong Icount, int To, long EventIndex);

/// <summary>One watchpoint hit: the watch and the watched bytes before and after (empty while unmapped).</summary>
public sealed record WatchHit(Watchpoint Watch, WatchKind Access, byte[] Old, byte[] New)
{
    /// <summary>The old value as a little-endian number (its first 8 bytes).</summary>
    public ulong OldValue => LittleEndian(Old);
    public ulong NewValue => LittleEndian(New);

    private static ulong LittleEndian(byte[] bytes)
    {
        ulong v = 0;
        for (int i = Math.Min(bytes.Length, 8) - 1; i >= 0; i--) v = (v << 8) | bytes[i];
        return v;
    }
}

/// <summary>Where and why a run stopped.</summary>
public sealed record StopInfo(StopKind Kind, ulong Icount)
{
    public Breakpoint? Breakpoint { get; init; }
    public WatchHit? Watch { get; init; }
    public TraceEvent? Event { get; init; }
    /// <summary>For a watchpoint hit: the count before the step that hit it (the state still holding the old value).</summary>
    public ulong? StepStartIcount { get; init; }
    /// <summary>For a watchpoint hit: the event index at the start of that step (with <see cref="StepStartIcount"/>, which state at that count: docs/time-travel.md "Position").</summary>
    public long? StepStartEventIndex { get; init; }
    /// <summary>At the end of the trace: how the machine ended.</summary>
    public MachineExit? Exit { get; init; }
}
