using System.Runtime.CompilerServices;
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

    /// <summary>What hypercall events carry: chosen by the recorder, read back from the header by the replayer.</summary>
    public HypercallOutputLevel Outputs { get; init; }

    /// <summary>Takes plain hypercalls and upcalls before an event object is built (the replay's verifier, the recorder's writer); null: every event is built.</summary>
    public PlainEvents? Plain { get; init; }

    /// <summary>
    /// The recorder's batches (the trace writer thread's <see cref="EventBatcher"/>): plain hypercalls
    /// and upcalls the model reports with their vCPU go there directly, as <see cref="Plain"/> would
    /// take them; null: through <see cref="Plain"/>, or as event objects.
    /// </summary>
    public EventBatcher? Batches { get; init; }

    /// <summary>
    /// The replay's place in the recorded checks: plain hypercalls and upcalls the model reports with
    /// their vCPU are compared there and taken directly (<see cref="ColumnCursor.TakeHypercall"/>: no
    /// event object, no virtual call); one that does not match there goes on as without it.
    /// </summary>
    public ColumnCursor? Expected { get; init; }

    public void OnHypercall(ulong icount, int number, in HypercallArgs args, long result, ReadOnlySpan<MulticallResult> entries,
        HypercallOutput output) => OnHypercall(icount, number, in args, result, entries, in output, -1);

    /// <summary>
    /// <see cref="IXenObserver.OnHypercall"/> as the Xen model calls it (directly, this class being
    /// sealed), with the running vCPU: with <see cref="Batches"/> a plain hypercall is appended there,
    /// with <see cref="Expected"/> matched there; <paramref name="vcpu"/> -1 (unknown): neither (the
    /// event is stamped where it is emitted). Only those two paths are here; everything else is in
    /// <see cref="OnOtherHypercall"/>, so this method keeps its values in registers (with the object
    /// paths in it, the JIT spilled them and zeroed a stack span at every call).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal void OnHypercall(ulong icount, int number, in HypercallArgs args, long result, ReadOnlySpan<MulticallResult> entries,
        in HypercallOutput output, int vcpu)
    {
        bool plain = true;
        if (vcpu >= 0 && entries.IsEmpty && !(Outputs == HypercallOutputLevel.Data && output.Writes.Count > 0))
        {
            bool digest = Outputs != HypercallOutputLevel.None;
            if (TakePlain(icount, number, in args, result, digest ? output.Digest : 0, digest ? output.Site : 0, vcpu, out plain)) return;
        }
        OnOtherHypercall(icount, number, in args, result, entries, in output, plain);
    }

    /// <summary>
    /// A hypercall that wrote nothing into a declared buffer and is no multicall (its output: the
    /// <paramref name="site"/> and digest 0), as the Xen model reports most of them: the same as
    /// <see cref="OnHypercall(ulong, int, in HypercallArgs, long, ReadOnlySpan{MulticallResult}, in HypercallOutput, int)"/>
    /// with that output, without the output being built for the two per-event paths.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal void OnPlainHypercall(ulong icount, int number, in HypercallArgs args, long result, uint site, int vcpu)
    {
        bool plain = true;
        if (vcpu >= 0 && TakePlain(icount, number, in args, result, 0, Outputs != HypercallOutputLevel.None ? site : 0, vcpu, out plain)) return;
        OnOtherPlainHypercall(icount, number, in args, result, site, plain);
    }

    /// <summary>
    /// A plain hypercall the two per-event paths did not take, with its output built here: out of
    /// <see cref="OnPlainHypercall"/>, whose frame would otherwise hold the output (it holds a reference)
    /// and zero it at every call.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void OnOtherPlainHypercall(ulong icount, int number, in HypercallArgs args, long result, uint site, bool plain)
    {
        var output = new HypercallOutput(site, Array.Empty<GuestWriteRecord>(), 0);
        OnOtherHypercall(icount, number, in args, result, default, in output, plain);
    }

    /// <summary>
    /// The two per-event paths of a hypercall recorded as a row: appended to <see cref="Batches"/>, or
    /// matched in <see cref="Expected"/>. True when taken; when not, <paramref name="plain"/> is false
    /// only if <see cref="Expected"/> refused it (a divergence to report, not a <see cref="Plain"/> call).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool TakePlain(ulong icount, int number, in HypercallArgs args, long result, ulong digest, uint site, int vcpu, out bool plain)
    {
        plain = true;
        if (Batches != null)
        {
            Batches.Hypercall(icount, number, in args, result, digest, site, vcpu);
            return true;
        }
        if (Expected == null) return false;
        if (Expected.TakeHypercall(icount, vcpu, number, HypercallArgs.AsSpan(in args), result, digest, site)) return true;
        plain = false;
        return false;
    }

    /// <summary>A hypercall <see cref="Batches"/> and <see cref="Expected"/> did not take: to <see cref="Plain"/> (when <paramref name="plain"/>) or emitted as an event.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void OnOtherHypercall(ulong icount, int number, in HypercallArgs args, long result, ReadOnlySpan<MulticallResult> entries,
        in HypercallOutput output, bool plain)
    {
        bool digest = Outputs != HypercallOutputLevel.None;
        if (plain && Plain != null && entries.IsEmpty && !(Outputs == HypercallOutputLevel.Data && output.Writes.Count > 0))
        {
            ReadOnlySpan<uint> a = [args.A1, args.A2, args.A3, args.A4, args.A5, args.A6];
            if (Plain.Hypercall(icount, number, a, result, digest ? output.Digest : 0, digest ? output.Site : 0)) return;
        }
        MulticallEntry[]? mc = null;
        if (!entries.IsEmpty)
        {
            mc = new MulticallEntry[entries.Length];
            for (int i = 0; i < entries.Length; i++) mc[i] = new MulticallEntry(entries[i].Op, entries[i].Result);
        }
        GuestWrite[]? mem = null;
        if (Outputs == HypercallOutputLevel.Data && output.Writes.Count > 0)
            mem = output.Writes.Select(w => new GuestWrite(w.Address, w.Bytes)).ToArray();
        _emit(new HypercallEvent(icount, number, new[] { args.A1, args.A2, args.A3, args.A4, args.A5, args.A6 }, result, mc, mem,
            digest ? output.Digest : 0, digest ? output.Site : 0));
    }

    /// <summary>Upcall events carry the interrupted code and the callback (header option upcall-sites).</summary>
    public bool UpcallSites { get; init; }

    public void OnUpcall(ulong icount, int vcpu, ReadOnlySpan<uint> ports) => OnUpcallAt(icount, vcpu, ports, 0, 0);

    /// <remarks>
    /// The recording's append comes first and alone; the other paths are out of line
    /// (<see cref="OnUnbatchedUpcall"/>), so the recording runs a small method, which the JIT can
    /// inline into the Xen model's caller (docs/record-replay.md "The trace writer thread").
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void OnUpcallAt(ulong icount, int vcpu, ReadOnlySpan<uint> ports, uint interrupted, uint handler)
    {
        if (!UpcallSites) interrupted = handler = 0;
        if (Batches is { } batches && vcpu >= 0) batches.Upcall(icount, vcpu, ports, interrupted, handler);
        else OnUnbatchedUpcall(icount, vcpu, ports, interrupted, handler);
    }

    /// <summary>
    /// <see cref="OnUpcallAt"/> without <see cref="Batches"/> (or with the vCPU unknown): matched in
    /// <see cref="Expected"/> here and alone (the replay's per-upcall path), else <see cref="OnOtherUpcall"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private void OnUnbatchedUpcall(ulong icount, int vcpu, ReadOnlySpan<uint> ports, uint interrupted, uint handler)
    {
        // Ports a row holds itself only: the match then makes no call, so the JIT keeps this method's values in registers.
        if (ports.Length <= ColumnCursor.HeldValues && Expected is { } expected && expected.TakeUpcall(icount, vcpu, ports, interrupted, handler)) return;
        OnOtherUpcall(icount, vcpu, ports, interrupted, handler);
    }

    /// <summary>An upcall <see cref="OnUnbatchedUpcall"/> did not take: matched in <see cref="Expected"/> (more ports than a row holds), or to <see cref="Plain"/>, or emitted.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void OnOtherUpcall(ulong icount, int vcpu, ReadOnlySpan<uint> ports, uint interrupted, uint handler)
    {
        if (Expected != null)
        {
            if (ports.Length <= ColumnCursor.HeldValues || !Expected.TakeUpcall(icount, vcpu, ports, interrupted, handler)) EmitUpcall(icount, vcpu, ports, interrupted, handler);
            return;
        }
        if (Plain?.Upcall(icount, vcpu, ports, interrupted, handler) == true) return;
        EmitUpcall(icount, vcpu, ports, interrupted, handler);
    }

    /// <summary>The upcall as an event (out of line: the per-upcall paths above stay small).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void EmitUpcall(ulong icount, int vcpu, ReadOnlySpan<uint> ports, uint interrupted, uint handler) =>
        _emit(new UpcallEvent(icount, vcpu, ports.ToArray()) { Eip = interrupted, Handler = handler });

    /// <summary>Exception events carry the handler they were delivered to (header option exception-handlers).</summary>
    public bool ExceptionHandlers { get; init; }

    public void OnException(ulong icount, int vector, uint errorCode, uint cr2, uint eip) => OnExceptionAt(icount, vector, errorCode, cr2, eip, 0);

    public void OnExceptionAt(ulong icount, int vector, uint errorCode, uint cr2, uint eip, uint handler) =>
        _emit(new ExceptionEvent(icount, vector, errorCode, cr2, eip) { Handler = ExceptionHandlers ? handler : 0 });

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

/// <summary>What a trace's hypercall events carry about the guest memory each call wrote (header option hypercall-outputs).</summary>
public enum HypercallOutputLevel
{
    /// <summary>Nothing (traces recorded before hypercall outputs existed).</summary>
    None,
    /// <summary>The digest of the bytes written into declared output buffers, and the call site.</summary>
    Digest,
    /// <summary>The digest, the call site and the bytes themselves (record --hypercall-data).</summary>
    Data,
}

/// <summary>The header option text of each <see cref="HypercallOutputLevel"/>.</summary>
public static class HypercallOutputOption
{
    public static string? Text(HypercallOutputLevel level) => level switch
    {
        HypercallOutputLevel.Digest => "digest",
        HypercallOutputLevel.Data => "data",
        _ => null,
    };

    public static HypercallOutputLevel Parse(string? text) => text switch
    {
        "digest" => HypercallOutputLevel.Digest,
        "data" => HypercallOutputLevel.Data,
        _ => HypercallOutputLevel.None,
    };
}
