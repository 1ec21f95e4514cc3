namespace Replayvisor.Engine.Trace.Compact;

/// <summary>
/// The columns of a compact events chunk (docs/trace-format.md "Compact events chunks"), in the
/// order they are stored. Each field of each event goes to its own column, so values of one
/// kind lie together (LZ4 then finds their repeats), and most numbers are stored as small
/// differences from the value before them.
/// </summary>
internal enum CompactColumn
{
    /// <summary>One byte per event: its union kind (docs/trace-format.md "Events"), or <see cref="CompactCodes.Escaped"/>.</summary>
    Kind,
    /// <summary>Per event: varint icount minus the previous event's (the first: minus 0).</summary>
    Icount,
    /// <summary>Per hypercall: zigzag varint of its number.</summary>
    HypercallNumber,
    /// <summary>Per hypercall: one byte, bits 0-3 the argument count, bit 4 a digest follows, bit 5 multicall entries follow.</summary>
    HypercallShape,
    /// <summary>Per argument: zigzag varint of (argument − the same argument of the previous hypercall with the same number), 32-bit wrapping.</summary>
    HypercallArgs,
    /// <summary>Per hypercall: zigzag varint of its result.</summary>
    HypercallResult,
    /// <summary>Per hypercall with a digest: 8 bytes, little-endian.</summary>
    HypercallDigest,
    /// <summary>Per hypercall: zigzag varint of (site − the site of the previous hypercall with the same number), 32-bit wrapping.</summary>
    HypercallSite,
    /// <summary>Per hypercall with multicall entries: varint count, then per entry zigzag varint op and zigzag varint result.</summary>
    Multicall,
    /// <summary>Per upcall: varint vcpu, varint port count, varint ports.</summary>
    Upcall,
    /// <summary>Per time event: byte kind, zigzag varint of (value − the previous value of that kind), 64-bit wrapping.</summary>
    Time,
    /// <summary>Per async event: byte kind, varint port, varint argument.</summary>
    Async,
    /// <summary>Per exception: varint vector, varint error code, varint cr2, varint eip.</summary>
    Exception,
    /// <summary>Per checkpoint: varint length, the state hash.</summary>
    Checkpoint,
    /// <summary>Per escaped event: varint length, the event as MessagePack (as in a MessagePack events chunk).</summary>
    Escaped,
    /// <summary>Per event in the columns other than an upcall (whose column holds its own): zigzag varint of its Vcpu.</summary>
    Vcpu,
    /// <summary>
    /// Per upcall, when any upcall of the chunk has a site (header option upcall-sites), else empty
    /// and left out: zigzag varint of (Eip − the previous upcall's Eip), then of (Handler − the
    /// previous upcall's Handler), 32-bit wrapping.
    /// </summary>
    UpcallSite,
    /// <summary>
    /// Per exception stored in the columns, when any of the chunk's has a handler (header option
    /// exception-handlers), else empty and left out: zigzag varint of (Handler − the previous
    /// exception's Handler), 32-bit wrapping.
    /// </summary>
    ExceptionHandler,
}

/// <summary>Numbers of the compact encoding.</summary>
internal static class CompactCodes
{
    /// <summary>The kind byte of an event stored whole as MessagePack in the <see cref="CompactColumn.Escaped"/> column.</summary>
    public const byte Escaped = 0xFF;
    /// <summary>How many columns this build knows (readers skip columns past the ones they know).</summary>
    public const int ColumnCount = (int)CompactColumn.ExceptionHandler + 1;
    /// <summary>
    /// The columns every chunk has (format 3 as first written). The writer leaves out the columns
    /// after them that are empty at the end (upcall sites, exception handlers), so chunks without
    /// those keep their format-3 bytes.
    /// </summary>
    public const int BaseColumnCount = (int)CompactColumn.Vcpu + 1;
    /// <summary>Union kinds (TraceEvent.cs).</summary>
    public const byte Hypercall = 0, Upcall = 1, Time = 2, Async = 5, Exception = 6, Checkpoint = 9;
    /// <summary>HypercallShape bits.</summary>
    public const byte ArgCountMask = 0x0F, HasDigest = 0x10, HasMulticall = 0x20;
}
