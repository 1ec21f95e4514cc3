namespace Replayvisor.Engine.Xen;

/// <summary>
/// Everything a recorder (or a debugger) may want to see the Xen model do. Every callback runs
/// synchronously at the instruction count given; observers must not change machine state.
/// All members have empty default implementations so an observer overrides only what it needs.
/// </summary>
public interface IXenObserver
{
    /// <summary>
    /// A hypercall completed (for multicall: after all entries). <paramref name="entries"/> is empty
    /// except for multicall; <paramref name="output"/> is where it was issued and what it wrote back.
    /// </summary>
    void OnHypercall(ulong icount, int number, in HypercallArgs args, long result, ReadOnlySpan<MulticallResult> entries,
        HypercallOutput output) { }

    /// <summary>An event-channel upcall was injected; <paramref name="ports"/> are pending and unmasked at that moment.</summary>
    void OnUpcall(ulong icount, int vcpu, ReadOnlySpan<uint> ports) { }

    /// <summary>
    /// What the model calls for an upcall: <see cref="OnUpcall"/> with the guest code it interrupted
    /// (Hypervisor.InterruptedSite) and the event callback entered. By default it forwards to <see cref="OnUpcall"/>.
    /// </summary>
    void OnUpcallAt(ulong icount, int vcpu, ReadOnlySpan<uint> ports, uint interrupted, uint handler) => OnUpcall(icount, vcpu, ports);

    /// <summary>An exception or software interrupt was bounced to the guest handler.</summary>
    void OnException(ulong icount, int vector, uint errorCode, uint cr2, uint eip) { }

    /// <summary>What the model calls for an exception: <see cref="OnException"/> with the handler it was delivered to (its trap-table entry). By default it forwards to <see cref="OnException"/>.</summary>
    void OnExceptionAt(ulong icount, int vector, uint errorCode, uint cr2, uint eip, uint handler) => OnException(icount, vector, errorCode, cr2, eip);

    /// <summary>The failsafe callback was entered (a segment reload or the final iret faulted).</summary>
    void OnFailsafe(ulong icount, uint eip, string cause) { }

    /// <summary>Guest console output (console_io write or the PV console ring).</summary>
    void OnConsoleOutput(ulong icount, ReadOnlySpan<byte> bytes) { }

    /// <summary>Console input bytes placed where the guest reads them.</summary>
    void OnConsoleInput(ulong icount, ReadOnlySpan<byte> bytes) { }

    /// <summary>The domain stopped: a guest shutdown request or a crash by the model.</summary>
    void OnShutdown(ulong icount, ShutdownKind kind, string detail) { }
}

/// <summary>One multicall entry's op and result.</summary>
public readonly record struct MulticallResult(int Op, long Result);

/// <summary>Bytes a hypercall wrote into guest memory at a guest virtual address.</summary>
public sealed record GuestWriteRecord(uint Address, byte[] Bytes);

/// <summary>
/// Where a hypercall was issued and what it wrote back into guest memory. <see cref="Site"/> is the
/// guest code address of the call: the caller's return address when the guest called a stub of
/// the hypercall page, else the address of the <c>int $0x82</c>. <see cref="Writes"/> are the
/// bytes written inside the buffers the hypercall table declares, <see cref="Digest"/> their hash.
/// A value (one per hypercall, so recording allocates none); <see cref="Writes"/> is valid only
/// during the observer's callback (the model reuses the list).
/// </summary>
public readonly record struct HypercallOutput(uint Site, IReadOnlyList<GuestWriteRecord> Writes, ulong Digest)
{
    /// <summary>Nothing known (no observer asked for the capture).</summary>
    public static HypercallOutput None => new(0, Array.Empty<GuestWriteRecord>(), 0);
}

/// <summary>Why the domain stopped (SHUTDOWN_* reasons, plus a crash by the model).</summary>
public enum ShutdownKind : byte { None = 255, PowerOff = 0, Reboot = 1, Suspend = 2, Crash = 3, Watchdog = 4, DomainCrash = 100 }
