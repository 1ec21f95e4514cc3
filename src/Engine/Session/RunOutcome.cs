using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Trace;

namespace Replayvisor.Engine.Session;

/// <summary>How a machine exit is written into a trace; shared by the recorder and the replayer.</summary>
public static class RunOutcome
{
    /// <summary>
    /// The closing event for exits the Xen model does not report itself (a guest shutdown or a
    /// domain crash is already an event from the model); null when there is none to add.
    /// </summary>
    public static ShutdownEvent? ClosingEvent(MachineExit exit) => exit.Kind switch
    {
        MachineExitKind.InstructionLimit => new ShutdownEvent(exit.Icount, ShutdownReason.PowerOff, ExitKind.InstructionLimit, exit.Detail),
        MachineExitKind.Unsupported => new ShutdownEvent(exit.Icount, ShutdownReason.Crash, ExitKind.Stopped, "unsupported: " + exit.Detail),
        MachineExitKind.Idle => new ShutdownEvent(exit.Icount, ShutdownReason.PowerOff, ExitKind.Stopped, "idle: " + exit.Detail),
        MachineExitKind.Stopped => new ShutdownEvent(exit.Icount, ShutdownReason.PowerOff, ExitKind.Stopped, InterruptedDetail) { StopSite = exit.StopSite },
        _ => null,
    };

    /// <summary>The detail of the closing event of a run ended by Ctrl-C or SIGTERM.</summary>
    public const string InterruptedDetail = "interrupted";

    public static TraceSummary Summary(MachineExit exit, byte[] finalHash, ulong guestTimeNs) =>
        new(exit.Icount, ExitOf(exit.Kind), ReasonOf(exit.Kind), finalHash, guestTimeNs);

    public static ExitKind ExitOf(MachineExitKind k) => k switch
    {
        MachineExitKind.PoweredOff or MachineExitKind.Rebooted or MachineExitKind.Suspended => ExitKind.GuestShutdown,
        MachineExitKind.Crashed => ExitKind.DomainCrashed,
        MachineExitKind.InstructionLimit => ExitKind.InstructionLimit,
        _ => ExitKind.Stopped,
    };

    public static ShutdownReason ReasonOf(MachineExitKind k) => k switch
    {
        MachineExitKind.Rebooted => ShutdownReason.Reboot,
        MachineExitKind.Suspended => ShutdownReason.Suspend,
        MachineExitKind.Crashed or MachineExitKind.Unsupported => ShutdownReason.Crash,
        _ => ShutdownReason.PowerOff,
    };
}
