namespace Replayvisor.Engine.Cpu;

/// <summary>
/// Why the running block must stop after (or, for a fault, instead of) the current instruction.
/// Handlers, the block cache and the host set these bits in <see cref="X86Cpu.Exit"/>; the
/// execution loop (Execution.cs) is the only reader and clears them.
/// </summary>
[Flags]
internal enum CpuExit
{
    None = 0,
    /// <summary>The instruction faulted: it does not retire and the pending event is delivered.</summary>
    Fault = 1,
    /// <summary>Control left the straight-line block (a branch, or the block's code was overwritten): the instruction retires and the next block is looked up.</summary>
    Branch = 2,
    /// <summary>A trap or software interrupt is delivered after the instruction retires.</summary>
    Event = 4,
    /// <summary>The host asked the run loop to return (<see cref="X86Cpu.RequestStop"/>).</summary>
    Stop = 8,
    /// <summary>The instruction is outside the implemented set (<see cref="X86Cpu.StopMessage"/>).</summary>
    Unsupported = 16,
}
