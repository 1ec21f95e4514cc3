using Replayvisor.Engine.Session;
using Replayvisor.Engine.Trace;

namespace Replayvisor.Record;

/// <summary>The <see cref="TraceObserver"/> a recording attaches to the Xen model (and `bench --guest`'s observing-only run, the same observer without a trace).</summary>
public static class RecorderObserver
{
    /// <summary>Upcall sites and exception handlers on; plain hypercalls and upcalls to <paramref name="batches"/> (the writer thread's) or <paramref name="plain"/>, everything else to <paramref name="log"/>.</summary>
    public static TraceObserver Create(Action<TraceEvent> log, HypercallOutputLevel outputs, EventBatcher? batches, PlainEvents? plain) =>
        new(log) { Outputs = outputs, UpcallSites = true, ExceptionHandlers = true, Batches = batches, Plain = plain };
}
