using MessagePack;

namespace Replayvisor.Engine.Trace;

/// <summary>
/// One recorded fact, stamped with the retired-instruction count at which it happened.
/// Events are records: they compare by value, so replay compares expected with actual by ==.
/// Every kind declares its role by deriving from <see cref="InputEvent"/> (replay feeds it to the
/// guest) or <see cref="CheckEvent"/> (replay produces it again and compares).
/// To add an event kind: write one record deriving from one of those two and add one [Union]
/// line here with a new, never reused, key (and document it in docs/trace-format.md).
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

/// <summary>
/// A nondeterministic input: the recorder logs it where it entered the machine, and replay
/// injects the logged value at the same instruction count instead of asking the host.
/// </summary>
public abstract record InputEvent(ulong Icount) : TraceEvent(Icount);

/// <summary>
/// Something the machine did (a consequence of its inputs): replay re-executes, produces it
/// again and compares it with the recording; the first difference is a divergence.
/// </summary>
public abstract record CheckEvent(ulong Icount) : TraceEvent(Icount);
