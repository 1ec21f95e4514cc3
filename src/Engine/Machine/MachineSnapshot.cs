using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Memory;
using Replayvisor.Engine.Xen;
using Replayvisor.Engine.Xen.Mm;
using Replayvisor.Engine.Time;

namespace Replayvisor.Engine.Machine;

/// <summary>
/// A whole <see cref="XenMachine"/> at an instruction boundary, as plain data: deep copies only,
/// nothing shared with the machine it came from, so one snapshot can be restored any number of
/// times (into the same machine or into another built from the same kernel and options).
/// </summary>
public sealed record MachineSnapshot
{
    public required CpuSnapshot Cpu { get; init; }
    /// <summary>All of machine memory (guest frames, shared_info, rings, page tables, Xen's frames, M2P); null when <see cref="Pages"/> holds it.</summary>
    public byte[]? Ram { get; init; }
    /// <summary>Machine memory as pages shared with other snapshots (<see cref="XenMachine.SnapshotSharingPages"/>); null when <see cref="Ram"/> holds it.</summary>
    public RamPages? Pages { get; init; }
    /// <summary>The <see cref="VirtualClock"/>'s idle time, or null when the clock is external (host/trace time is an input, not state).</summary>
    public required ulong? ClockIdleNs { get; init; }
    public required MemoryManagerSnapshot Mm { get; init; }
    public required HypervisorSnapshot Xen { get; init; }
    /// <summary>The run loop's own state: a blocked vcpu that has not been scheduled back in, the armed timer deadline and its chaos delay.</summary>
    public required bool Sleeping { get; init; }
    public required ulong ArmedDeadline { get; init; }
    public required ulong TimerDelay { get; init; }
    /// <summary>Whether the run loop stopped at a pure point and resumes without a timer check, and the timer count it resumes with.</summary>
    public bool ResumePure { get; init; }
    public ulong ResumeTimerAt { get; init; }
    /// <summary>Where the run loop's stop-site numbering stands (<see cref="Machine.StopSites"/>).</summary>
    public StopSiteState StopSites { get; init; } = new(ulong.MaxValue, 0, false);
}
