namespace Replayvisor.Engine.Xen.Hypercalls;

/// <summary>multicall (xen/common/multicall.c, docs/xen-abi.md §12).</summary>
internal static class MulticallHypercall
{
    public const int EntrySize = 32;

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
                if (!hv.Guest.TryRead(at, e)) return -Errno.EFAULT;
                uint op = BitConverter.ToUInt32(e);
                var args = new HypercallArgs(BitConverter.ToUInt32(e[8..]), BitConverter.ToUInt32(e[12..]), BitConverter.ToUInt32(e[16..]),
                    BitConverter.ToUInt32(e[20..]), BitConverter.ToUInt32(e[24..]), BitConverter.ToUInt32(e[28..]));
                long result = hv.Call((int)op, args);
                hv.MulticallResults.Add(new MulticallResult((int)op, result));
                if (!hv.Guest.TryWrite32(at + 4, (uint)result)) return -Errno.EFAULT;
                // iret replaces the guest context the batch was issued from: nothing after it can run.
                if (op == 23 || hv.IsStopped) break;
            }
            return 0;
        }
        finally
        {
            hv.InMulticall = false;
        }
    }
}
