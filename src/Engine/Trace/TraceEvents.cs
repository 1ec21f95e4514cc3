using MessagePack;

namespace Replayvisor.Engine.Trace;

// The event schema. Key numbers are the on-disk format: never renumber or reuse one; a new
// field takes a new key at the end. Key 0 (Icount) is declared on TraceEvent.

/// <summary>One entry of a multicall batch: its hypercall number and result.</summary>
[MessagePackObject]
public sealed record MulticallEntry([property: Key(0)] int Op, [property: Key(1)] long Result);

/// <summary>Bytes a hypercall wrote back to guest memory at a guest (virtual) address.</summary>
[MessagePackObject]
public sealed record GuestWrite([property: Key(0)] uint Address, [property: Key(1)] EquatableArray<byte> Bytes);

/// <summary>
/// A hypercall (int 0x82), its arguments (ebx, ecx, edx, esi, edi, ebp) and result; with the
/// hypercall-outputs header option also the digest of what it wrote into its declared output
/// buffers and the guest code address that issued it (0 in older traces).
/// </summary>
[MessagePackObject]
public sealed record HypercallEvent(
    ulong Icount,
    [property: Key(1)] int Number,
    [property: Key(2)] EquatableArray<uint> Args,
    [property: Key(3)] long Result,
    [property: Key(4)] EquatableArray<MulticallEntry> Multicall = default,
    [property: Key(5)] EquatableArray<GuestWrite> Memory = default,
    [property: Key(6)] ulong OutputDigest = 0,
    [property: Key(7)] uint Site = 0) : CheckEvent(Icount)
{
    /// <summary>The vCPU it belongs to (absent in older traces = 0; docs/trace-format.md).</summary>
    [Key(8)] public int Vcpu { get; init; }
}

/// <summary>
/// An event-channel upcall injected into a vCPU with the ports pending at that moment; with the
/// upcall-sites header option also the guest code it interrupted and the callback it entered
/// (0 in older traces).
/// </summary>
[MessagePackObject]
public sealed record UpcallEvent(
    ulong Icount,
    [property: Key(1)] int Vcpu,
    [property: Key(2)] EquatableArray<uint> Ports) : CheckEvent(Icount)
{
    /// <summary>The interrupted guest code: the EIP the upcall returns to, or for a vCPU returning from a hypercall-page stub the stub's caller.</summary>
    [Key(3)] public uint Eip { get; init; }
    /// <summary>The event callback entered (set_callbacks / CALLBACKOP_register).</summary>
    [Key(4)] public uint Handler { get; init; }
}

/// <summary>A guest-visible time value read from the host.</summary>
[MessagePackObject]
public sealed record TimeEvent(
    ulong Icount,
    [property: Key(1)] TimeKind Kind,
    [property: Key(2)] ulong Value) : InputEvent(Icount)
{
    /// <summary>The vCPU it belongs to (absent in older traces = 0; docs/trace-format.md).</summary>
    [Key(3)] public int Vcpu { get; init; }
}

/// <summary>
/// Console input bytes handed to the guest. <see cref="Site"/> (format 2) says where in the run
/// loop they entered, so replay hands them over at that same point (docs/record-replay.md).
/// </summary>
[MessagePackObject]
public sealed record ConsoleInputEvent(
    ulong Icount,
    [property: Key(1)] EquatableArray<byte> Bytes,
    [property: Key(2)] ConsoleInputSite Site = ConsoleInputSite.Poll) : InputEvent(Icount)
{
    /// <summary>The vCPU it belongs to (absent in older traces = 0; docs/trace-format.md).</summary>
    [Key(3)] public int Vcpu { get; init; }
}

/// <summary>Console output bytes written by the guest.</summary>
[MessagePackObject]
public sealed record ConsoleOutputEvent(
    ulong Icount,
    [property: Key(1)] EquatableArray<byte> Bytes) : CheckEvent(Icount)
{
    /// <summary>The vCPU it belongs to (absent in older traces = 0; docs/trace-format.md).</summary>
    [Key(2)] public int Vcpu { get; init; }
}

/// <summary>An asynchronous input injected at an instruction boundary.</summary>
[MessagePackObject]
public sealed record AsyncEvent(
    ulong Icount,
    [property: Key(1)] AsyncKind Kind,
    [property: Key(2)] uint Port,
    [property: Key(3)] ulong Arg = 0) : InputEvent(Icount)
{
    /// <summary>The vCPU it belongs to (absent in older traces = 0; docs/trace-format.md).</summary>
    [Key(4)] public int Vcpu { get; init; }
}

/// <summary>An exception bounced to the guest's trap table handler.</summary>
[MessagePackObject]
public sealed record ExceptionEvent(
    ulong Icount,
    [property: Key(1)] int Vector,
    [property: Key(2)] uint ErrorCode,
    [property: Key(3)] uint Cr2,
    [property: Key(4)] uint Eip) : CheckEvent(Icount)
{
    /// <summary>The vCPU it belongs to (absent in older traces = 0; docs/trace-format.md).</summary>
    [Key(5)] public int Vcpu { get; init; }
    /// <summary>The guest handler the exception was delivered to (its trap-table entry; header option exception-handlers, else 0).</summary>
    [Key(6)] public uint Handler { get; init; }
}

/// <summary>A failsafe callback delivery (a guest segment reload failed on return to the guest).</summary>
[MessagePackObject]
public sealed record FailsafeEvent(
    ulong Icount,
    [property: Key(1)] uint Eip,
    [property: Key(2)] string Cause) : CheckEvent(Icount)
{
    /// <summary>The vCPU it belongs to (absent in older traces = 0; docs/trace-format.md).</summary>
    [Key(3)] public int Vcpu { get; init; }
}

/// <summary>
/// The end of the run. <see cref="StopSite"/> places a run stopped on request (Ctrl-C, SIGTERM)
/// exactly: which of the run loop's stop sites at <see cref="TraceEvent.Icount"/> it ended at
/// (docs/record-replay.md "Stop sites").
/// </summary>
[MessagePackObject]
public sealed record ShutdownEvent(
    ulong Icount,
    [property: Key(1)] ShutdownReason Reason,
    [property: Key(2)] ExitKind Exit,
    [property: Key(3)] string Detail = "") : CheckEvent(Icount)
{
    /// <summary>The vCPU it belongs to (absent in older traces = 0; docs/trace-format.md).</summary>
    [Key(4)] public int Vcpu { get; init; }

    /// <summary>For a run stopped on request: the stop site at <see cref="TraceEvent.Icount"/> it ended at (absent in older traces = 0).</summary>
    [Key(5)] public int StopSite { get; init; }
}

/// <summary>A periodic checkpoint: the XxHash128 (16 bytes) of the machine state at this count.</summary>
[MessagePackObject]
public sealed record CheckpointEvent(
    ulong Icount,
    [property: Key(1)] EquatableArray<byte> StateHash) : CheckEvent(Icount)
{
    /// <summary>The vCPU it belongs to (absent in older traces = 0; docs/trace-format.md).</summary>
    [Key(2)] public int Vcpu { get; init; }
}
