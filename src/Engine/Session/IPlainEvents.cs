namespace Replayvisor.Engine.Session;

/// <summary>
/// Takes the two most frequent events as plain values, before any event object is built
/// (<see cref="TraceObserver.Plain"/>): a hypercall with no multicall entries and no guest-memory
/// bytes (it would be <c>new HypercallEvent(icount, number, args, result, default, default, digest, site)</c>
/// stamped with the running vCPU) and an upcall (<c>new UpcallEvent(icount, vcpu, ports) { Eip = eip,
/// Handler = handler }</c>). False: not taken, and the observer builds the event and emits it as
/// usual. Either way the event is the same; what takes it decides only how fast (the replay compares
/// it with the recording's columns, the recorder encodes it).
/// </summary>
public interface IPlainEvents
{
    bool Hypercall(ulong icount, int number, ReadOnlySpan<uint> args, long result, ulong digest, uint site);
    bool Upcall(ulong icount, int vcpu, ReadOnlySpan<uint> ports, uint eip, uint handler);
}
