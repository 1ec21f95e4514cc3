using Replayvisor.Engine.Machine;
using Replayvisor.Replay.Streaming;

namespace Replayvisor.Replay.Stepping;

/// <summary>
/// A whole replay at one instruction boundary: the machine (memory as shared pages), where the
/// input and verification cursors stand in the trace, the trace clock, and whether the run had ended.
/// Restoring it makes the replay continue exactly as it would have from there.
/// </summary>
public sealed record ReplayState(
    MachineSnapshot Machine,
    CursorPosition Inputs,
    VerifierState Verifier,
    (ulong Last, ulong LastIcount)? Clock,
    ulong LastCheckpoint,
    MachineExit? Exit)
{
    public ulong Icount => Machine.Cpu.Icount;
}
