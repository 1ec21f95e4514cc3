namespace Replayvisor.Engine.Session;

/// <summary>
/// Takes the two most frequent events as plain values, before any event object is built
/// (<see cref="TraceObserver.Plain"/>): a hypercall with no multicall entries and no guest-memory
/// bytes (it would be <c>new HypercallEvent(icount, number, args, result, default, default, digest, site)</c>
/// stamped with the running vCPU) and an upcall (<c>new UpcallEvent(icount, vcpu, ports) { Eip = eip,
/// Handler = handler }</c>). False: not taken, and the observer builds the event and emits it as
/// usual. Either way the event is the same; what takes it decides only how fast (the recorder
/// without its writer thread encodes it; the replay compares it with the recording's columns
/// through <see cref="TraceObserver.Expected"/> instead, a sealed class).
/// <para>An abstract class, not an interface: the observer calls it once per event, and a process
/// that both records and replays (the bench, tests) has two kinds of taker, which made an interface
/// call a virtual-stub-dispatch lookup on the replay's per-event path (perf: ~10 ns an event); a
/// virtual call is an indirect call through the method table.</para>
/// </summary>
public abstract class PlainEvents
{
    public abstract bool Hypercall(ulong icount, int number, ReadOnlySpan<uint> args, long result, ulong digest, uint site);
    public abstract bool Upcall(ulong icount, int vcpu, ReadOnlySpan<uint> ports, uint eip, uint handler);
}
