namespace Replayvisor.Engine.Xen;

/// <summary>
/// Told of every range of guest virtual memory the Xen model reads for the guest through
/// <see cref="GuestMemory"/> (copy_from_guest: a hypercall's arguments, a multicall list, an iret
/// frame, an emulated instruction's operand), so read and access watchpoints see those reads
/// (docs/time-travel.md "Stepping"). Side-effect-free peeks (MemoryManager.PeekGuest) are not reported.
/// Set only while a debugger single-steps with read watchpoints; null otherwise, at the cost of one check.
/// </summary>
public interface IGuestReadWatch
{
    /// <summary>Xen read [<paramref name="va"/>, <paramref name="va"/>+<paramref name="length"/>) of guest linear memory.</summary>
    void Read(uint va, int length);
}
