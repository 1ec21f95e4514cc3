using MessagePack;

namespace Replayvisor.Engine.Trace;

/// <summary>How the recorded run ended, written with the index by <see cref="TraceWriter.Complete"/>.</summary>
[MessagePackObject]
public sealed record TraceSummary(
    [property: Key(0)] ulong FinalIcount,
    [property: Key(1)] ExitKind Exit,
    [property: Key(2)] ShutdownReason Reason,
    [property: Key(3)] EquatableArray<byte> FinalStateHash = default,
    [property: Key(4)] ulong GuestTimeNs = 0);
