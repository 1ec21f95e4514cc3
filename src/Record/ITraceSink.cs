using Replayvisor.Engine.Trace;

namespace Replayvisor.Record;

/// <summary>
/// Where a recording's events go: a <see cref="TraceWriterThread"/> (the default: the trace is
/// encoded, compressed and written on a thread of its own) or the <see cref="TraceWriter"/> itself
/// on the recording thread (<see cref="LiveRequest.WriterThread"/> = false). Same calls, same bytes.
/// </summary>
internal interface ITraceSink : IDisposable
{
    long EventCount { get; }
    /// <summary>Returns once the trace's header and guest image are in the stream (before the guest runs).</summary>
    void WaitOpened();
    int PendingEvents { get; }
    void Append(TraceEvent traceEvent);
    void AppendHypercall(ulong icount, int number, ReadOnlySpan<uint> args, long result, ulong digest, uint site, int vcpu);
    void AppendUpcall(ulong icount, int vcpu, ReadOnlySpan<uint> ports, uint eip, uint handler);
    void Flush();
    /// <summary>As <see cref="Flush"/>, but need not wait for the bytes to reach the stream (the periodic flushes).</summary>
    void RequestFlush();
    void Complete(TraceSummary summary);
}

/// <summary>The trace written on the recording thread: every call goes straight to the writer.</summary>
internal sealed class DirectTraceSink(TraceWriter writer) : ITraceSink
{
    public long EventCount => writer.EventCount;
    public void WaitOpened() { } // the writer wrote and flushed them when it was built
    public int PendingEvents => writer.PendingEvents;
    public void Append(TraceEvent traceEvent) => writer.Append(traceEvent);
    public void AppendHypercall(ulong icount, int number, ReadOnlySpan<uint> args, long result, ulong digest, uint site, int vcpu) =>
        writer.AppendHypercall(icount, number, args, result, digest, site, vcpu);
    public void AppendUpcall(ulong icount, int vcpu, ReadOnlySpan<uint> ports, uint eip, uint handler) => writer.AppendUpcall(icount, vcpu, ports, eip, handler);
    public void Flush() => writer.Flush();
    public void RequestFlush() => writer.Flush();
    public void Complete(TraceSummary summary) => writer.Complete(summary);
    public void Dispose() => writer.Dispose();
}
