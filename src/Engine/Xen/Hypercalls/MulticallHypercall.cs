namespace Replayvisor.Engine.Xen.Hypercalls;

/// <summary>
/// multicall (xen/common/multicall.c; xen-abi.md §12). Both profiles refuse re-entry (-EINVAL), fault
/// on an unreadable entry or result (-EFAULT), check for preemption before each entry
/// (<see cref="Hypervisor.PreemptBefore"/>) and copy a preempted entry's continuation back into the
/// list before continuing themselves. They differ on an iret entry: Xen 3.1 runs on with the
/// rest of the batch in the new context and returns 0; Xen 4.19 ends the batch there (mc_exit, the
/// XSA-213 fix: pv/hypercall.c pv_do_multicall_call) and returns the iret's result, the guest's EAX.
/// </summary>
internal static class MulticallHypercall
{
    public const int EntrySize = 32;
    private const int Iret = 23;

    public static long Multicall(Hypervisor hv, in HypercallArgs a)
    {
        // Re-entry (a multicall entry that is itself a multicall) is refused for that entry.
        if (hv.InMulticall) return -Errno.EINVAL;
        uint list = a.A1, nr = a.A2;
        if ((ulong)list + (ulong)nr * EntrySize > hv.Layout.HypervisorVirtStart) return -Errno.EFAULT;
        hv.InMulticall = true;
        try
        {
            Span<byte> e = stackalloc byte[EntrySize];
            for (uint i = 0; i < nr; i++)
            {
                uint at = list + i * EntrySize;
                if (hv.PreemptBefore(i)) return hv.CreateContinuation(13, 2, new HypercallArgs(at, nr - i, 0, 0, 0, 0));
                if (!hv.Guest.TryRead(at, e)) return -Errno.EFAULT;
                uint op = BitConverter.ToUInt32(e);
                var args = new HypercallArgs(BitConverter.ToUInt32(e[8..]), BitConverter.ToUInt32(e[12..]), BitConverter.ToUInt32(e[16..]),
                    BitConverter.ToUInt32(e[20..]), BitConverter.ToUInt32(e[24..]), BitConverter.ToUInt32(e[28..]));
                long result = hv.Call((int)op, args);
                hv.MulticallResults.Add(new MulticallResult((int)op, result));
                if (op == Iret && hv.Xen4)
                {
                    hv.Guest.TryWrite32(at + 4, (uint)result); // best effort
                    return result;
                }
                if (!hv.Guest.TryWrite32(at + 4, (uint)result)) return -Errno.EFAULT;
                if (hv.TakeContinuation() is { } k)
                {
                    // The sub-call's continuation (its remaining arguments) goes back into the entry.
                    Span<byte> kargs = stackalloc byte[24];
                    uint[] v = [k.Args.A1, k.Args.A2, k.Args.A3, k.Args.A4, k.Args.A5, k.Args.A6];
                    for (int j = 0; j < 6; j++) BitConverter.TryWriteBytes(kargs[(j * 4)..], j < k.Count ? v[j] : BitConverter.ToUInt32(e[(8 + j * 4)..]));
                    if (!hv.Guest.TryWrite(at + 8, kargs)) return -Errno.EFAULT;
                    return hv.CreateContinuation(13, 2, new HypercallArgs(at, nr - i, 0, 0, 0, 0));
                }
                if (hv.IsStopped) break;
            }
            return 0;
        }
        finally
        {
            hv.InMulticall = false;
        }
    }
}
