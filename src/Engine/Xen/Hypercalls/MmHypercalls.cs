namespace Replayvisor.Engine.Xen.Hypercalls;

/// <summary>The MMU and descriptor family, delegated to <see cref="Mm.MemoryManager"/> (docs/xen-abi.md §10, §11).</summary>
internal static class MmHypercalls
{
    public static long MmuUpdate(Hypervisor hv, in HypercallArgs a) => hv.Mm.MmuUpdate(a);
    public static long MmuextOp(Hypervisor hv, in HypercallArgs a) => hv.Mm.MmuextOp(a);
    public static long UpdateVaMapping(Hypervisor hv, in HypercallArgs a) => hv.Mm.UpdateVaMapping(a);
    public static long UpdateVaMappingOtherdomain(Hypervisor hv, in HypercallArgs a) => hv.Mm.UpdateVaMappingOtherdomain(a, hv.Privileged);
    public static long SetGdt(Hypervisor hv, in HypercallArgs a) => hv.Mm.SetGdt(a);
    public static long UpdateDescriptor(Hypervisor hv, in HypercallArgs a) => hv.Mm.UpdateDescriptor(a);
    public static long VmAssist(Hypervisor hv, in HypercallArgs a) => hv.Mm.VmAssistOp(a.A1, a.A2);
}
