using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Xen;
using Replayvisor.Engine.Time;

namespace Replayvisor.Engine.Machine;

/// <summary>Everything that defines a run besides the kernel image (recorded in the trace header).</summary>
public sealed record XenMachineOptions
{
    public uint MemoryMiB { get; init; } = 16;
    public string CommandLine { get; init; } = "";
    /// <summary>Build the domain as dom0 (privileged, no xenstore/console rings).</summary>
    public bool InitialDomain { get; init; }
    /// <summary>Wallclock at system time 0 for the default <see cref="VirtualClock"/>.</summary>
    public uint EpochSeconds { get; init; } = VirtualClock.DefaultEpochSeconds;
    /// <summary>The time source; null = a <see cref="VirtualClock"/> (1 instruction = 1 ns, 1 GHz TSC).</summary>
    public IGuestClock? Clock { get; init; }
    public HypervisorOptions Hypervisor { get; init; } = new();
    /// <summary>How the CPU runs guest code (every tier gives the same results; the compiled tier is the fastest).</summary>
    public CpuTier Tier { get; init; } = CpuTier.Compiled;
    /// <summary>Compiled tier: block executions before a block is compiled (no effect on results or traces).</summary>
    public int CompileThreshold { get; init; } = X86Cpu.DefaultCompileThreshold;
    /// <summary>Xen's return path remembers its selector loads (<see cref="CpuSegmentLoader"/>; no effect on results or traces: off only to measure it).</summary>
    public bool SelectorLoadCache { get; init; } = true;
}

/// <summary>Why <see cref="XenMachine.Run"/> returned.</summary>
public enum MachineExitKind
{
    PoweredOff,
    Rebooted,
    Suspended,
    /// <summary>SHUTDOWN_crash from the guest, or a domain crash by the model (see the detail).</summary>
    Crashed,
    InstructionLimit,
    /// <summary>The CPU met an instruction it does not implement (detail = CPU stop message).</summary>
    Unsupported,
    /// <summary>The vcpu is blocked with nothing that can wake it (no timer armed): push input or give up.</summary>
    Idle,
    /// <summary>The input source asked the run to end (Ctrl-C, SIGTERM, replay target reached).</summary>
    Stopped,
}

/// <summary>The result of a run: what happened, a one-line explanation, and the instruction count.</summary>
public sealed record MachineExit(MachineExitKind Kind, string Detail, ulong Icount)
{
    /// <summary>For <see cref="MachineExitKind.Stopped"/>: the stop site at <see cref="Icount"/> where the run ended (<see cref="Machine.StopSites"/>).</summary>
    public int StopSite { get; init; }

    public override string ToString() => $"{Kind} at icount {Icount}: {Detail}";
}
