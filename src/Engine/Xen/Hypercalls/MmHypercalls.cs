namespace Replayvisor.Engine.Xen.Hypercalls;

/// <summary>The MMU and descriptor family, delegated to <see cref="Mm.MemoryManager"/> (xen-abi.md §10, §11).</summary>
internal static class MmHypercalls
{
    public static long MmuUpdate(Hypervisor hv, in HypercallArgs a) => Continued(hv, 1, a, 16, hv.Mm.MmuUpdate(a, hv.PreemptBefore));
    public static long MmuextOp(Hypervisor hv, in HypercallArgs a) => Continued(hv, 26, a, 12, hv.Mm.MmuextOp(a, hv.PreemptBefore));

    /// <summary>
    /// A batch the memory manager stopped early (-ERESTART) continues as Xen's do: the request pointer
    /// past the done elements, the remaining count with MMU_UPDATE_PREEMPTED, pdone and foreigndom as
    /// they were (*pdone already holds the partial count).
    /// </summary>
    private static long Continued(Hypervisor hv, int nr, in HypercallArgs a, uint size, long rc)
    {
        if (rc != -Errno.ERESTART) return rc;
        uint count = a.A2 & ~Mm.MmuCmd.UpdatePreempted, left = hv.Mm.PreemptedRemaining;
        var next = new HypercallArgs(a.A1 + (count - left) * size, left | Mm.MmuCmd.UpdatePreempted, a.A3, a.A4, 0, 0);
        return hv.CreateContinuation(nr, 4, next);
    }
    public static long UpdateVaMapping(Hypervisor hv, in HypercallArgs a) => hv.Mm.UpdateVaMapping(a);
    public static long UpdateVaMappingOtherdomain(Hypervisor hv, in HypercallArgs a) => hv.Mm.UpdateVaMappingOtherdomain(a, hv.Privileged);
    public static long SetGdt(Hypervisor hv, in HypercallArgs a) => hv.Mm.SetGdt(a);
    public static long UpdateDescriptor(Hypervisor hv, in HypercallArgs a) => hv.Mm.UpdateDescriptor(a);
    public static long VmAssist(Hypervisor hv, in HypercallArgs a) => hv.Mm.VmAssistOp(a.A1, a.A2);
}
