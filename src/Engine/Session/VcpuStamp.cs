using Replayvisor.Engine.Trace;

namespace Replayvisor.Engine.Session;

/// <summary>
/// Marks a trace event with the vCPU it belongs to (the running one when it happened; an upcall
/// names its own). vCPU 0 is the key's absent value, so one-vCPU events are returned as they are.
/// </summary>
public static class VcpuStamp
{
    public static TraceEvent Apply(TraceEvent e, int vcpu) => vcpu == 0 ? e : e switch
    {
        HypercallEvent h => h with { Vcpu = vcpu },
        TimeEvent t => t with { Vcpu = vcpu },
        ConsoleInputEvent c => c with { Vcpu = vcpu },
        ConsoleOutputEvent o => o with { Vcpu = vcpu },
        AsyncEvent a => a with { Vcpu = vcpu },
        ExceptionEvent x => x with { Vcpu = vcpu },
        FailsafeEvent f => f with { Vcpu = vcpu },
        ShutdownEvent s => s with { Vcpu = vcpu },
        CheckpointEvent k => k with { Vcpu = vcpu },
        _ => e, // UpcallEvent carries its target vCPU itself
    };

    /// <summary>The vCPU an event belongs to.</summary>
    public static int Of(TraceEvent e) => e switch
    {
        HypercallEvent h => h.Vcpu,
        UpcallEvent u => u.Vcpu,
        TimeEvent t => t.Vcpu,
        ConsoleInputEvent c => c.Vcpu,
        ConsoleOutputEvent o => o.Vcpu,
        AsyncEvent a => a.Vcpu,
        ExceptionEvent x => x.Vcpu,
        FailsafeEvent f => f.Vcpu,
        ShutdownEvent s => s.Vcpu,
        CheckpointEvent k => k.Vcpu,
        _ => 0,
    };
}
