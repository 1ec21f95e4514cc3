using MessagePack;

namespace Replayvisor.Engine.Trace;

/// <summary>
/// One recorded fact, stamped with the retired-instruction count at which it happened.
/// Events are records: they compare by value, so replay compares expected with actual by ==.
/// To add an event kind: write one record deriving from this class and add one [Union] line
/// with a new, never reused, key (and document it in docs/trace-format.md).
/// </summary>
[Union(0, typeof(HypercallEvent))]
[Union(1, typeof(UpcallEvent))]
[Union(2, typeof(TimeEvent))]
[Union(3, typeof(ConsoleInputEvent))]
[Union(4, typeof(ConsoleOutputEvent))]
[Union(5, typeof(AsyncEvent))]
[Union(6, typeof(ExceptionEvent))]
[Union(7, typeof(FailsafeEvent))]
[Union(8, typeof(ShutdownEvent))]
[Union(9, typeof(CheckpointEvent))]
public abstract record TraceEvent([property: Key(0)] ulong Icount);
