using Replayvisor.Engine.Trace;
using Replayvisor.Engine.Xen;

namespace Replayvisor.Engine.Session;

/// <summary>
/// Turns what the Xen model does into trace events: the recorder writes them, the replayer
/// compares them with the recording. Both sides use this one mapping, so they cannot disagree
/// about what an event looks like.
/// </summary>
public sealed class TraceObserver : IXenObserver
{
    private readonly Action<TraceEvent> _emit;

    public TraceObserver(Action<TraceEvent> emit) => _emit = emit;

    /// <summary>Record the bytes hypercalls write back into guest memory (bigger traces, finer divergence reports).</summary>
    public bool RecordGuestWrites { get; init; }

    public void OnHypercall(ulong icount, int number, in HypercallArgs args, long result, ReadOnlySpan<MulticallResult> entries,
        IReadOnlyList<GuestWriteRecord> writes)
    {
        MulticallEntry[]? mc = null;
        if (!entries.IsEmpty)
        {
            mc = new MulticallEntry[entries.Length];
            for (int i = 0; i < entries.Length; i++) mc[i] = new MulticallEntry(entries[i].Op, entries[i].Result);
        }
        GuestWrite[]? mem = null;
        if (RecordGuestWrites && writes.Count > 0)
            mem = writes.Select(w => new GuestWrite(w.Address, w.Bytes)).ToArray();
        _emit(new HypercallEvent(icount, number, new[] { args.A1, args.A2, args.A3, args.A4, args.A5, args.A6 }, result, mc, mem));
    }

    public void OnUpcall(ulong icount, int vcpu, ReadOnlySpan<uint> ports) => _emit(new UpcallEvent(icount, vcpu, ports.ToArray()));

    public void OnException(ulong icount, int vector, uint errorCode, uint cr2, uint eip) =>
        _emit(new ExceptionEvent(icount, vector, errorCode, cr2, eip));

    public void OnFailsafe(ulong icount, uint eip, string cause) => _emit(new FailsafeEvent(icount, eip, cause));

    public void OnConsoleOutput(ulong icount, ReadOnlySpan<byte> bytes) => _emit(new ConsoleOutputEvent(icount, bytes.ToArray()));

    // Console input is logged by the input source that injects it, not here (it would be logged twice).
    public void OnConsoleInput(ulong icount, ReadOnlySpan<byte> bytes) { }

    public void OnShutdown(ulong icount, ShutdownKind kind, string detail) =>
        _emit(new ShutdownEvent(icount, ReasonOf(kind), kind == ShutdownKind.DomainCrash ? ExitKind.DomainCrashed : ExitKind.GuestShutdown, detail));

    public static ShutdownReason ReasonOf(ShutdownKind kind) => kind switch
    {
        ShutdownKind.PowerOff => ShutdownReason.PowerOff,
        ShutdownKind.Reboot => ShutdownReason.Reboot,
        ShutdownKind.Suspend => ShutdownReason.Suspend,
        _ => ShutdownReason.Crash,
    };
}
