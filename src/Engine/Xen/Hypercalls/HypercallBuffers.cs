namespace Replayvisor.Engine.Xen.Hypercalls;

/// <summary>A guest virtual address range [Address, Address + Length).</summary>
public readonly record struct GuestRange(uint Address, uint Length)
{
    public ulong End => (ulong)Address + Length;
    public bool Contains(ulong address) => address >= Address && address < End;
}

/// <summary>
/// The output buffers of the hypercalls whose written memory depends on the sub-command or on
/// pointers inside the argument struct (the <see cref="GuestBuffer.Resolve"/> column of the
/// table). Each names exactly what the model's handler may copy_to_guest for that call, read
/// before the call without side effects (MemoryManager.PeekGuest); struct layouts are Xen 3.1's
/// public headers as summarised in docs/hypercall-outputs.md.
/// </summary>
internal static class HypercallBuffers
{
    private static void Add(List<GuestRange> into, uint address, ulong length)
    {
        if (length > 0) into.Add(new GuestRange(address, (uint)Math.Min(length, uint.MaxValue)));
    }

    /// <summary>memory_op: machphys_mfn_list writes its 12-byte struct and max_extents mfns; memory_map its 8-byte struct and one 20-byte e820 entry.</summary>
    public static void MemoryOp(Hypervisor hv, in HypercallArgs a, List<GuestRange> into)
    {
        uint arg = a.A2;
        switch (a.A1 & 0xF)
        {
            case MemoryHypercalls.MachphysMfnList:
                Add(into, arg, 12);
                if (hv.Mm.PeekGuest32(arg) is { } max && hv.Mm.PeekGuest32(arg + 4) is { } list) Add(into, list, (ulong)max * 4);
                break;
            case MemoryHypercalls.MemoryMap:
                Add(into, arg, 8);
                if (hv.Mm.PeekGuest32(arg + 4) is { } buffer) Add(into, buffer, 20);
                break;
        }
    }

    /// <summary>xen_version: the fixed-size struct of each XENVER_ command (public/version.h).</summary>
    public static void XenVersion(Hypervisor hv, in HypercallArgs a, List<GuestRange> into) => Add(into, a.A2, a.A1 switch
    {
        1 => 16,    // xen_extraversion_t
        2 => 144,   // xen_compile_info
        3 => 1024,  // xen_capabilities_info_t
        4 => 64,    // xen_changeset_info_t
        5 => 4,     // xen_platform_parameters
        6 => 8,     // xen_feature_info {submap_idx, submap}
        8 => 16,    // xen_domain_handle_t
        _ => 0,
    });

    /// <summary>grant_table_op setup_table: the frame list gnttab_setup_table.frame_list points at (nr_frames entries).</summary>
    public static void GrantFrameList(Hypervisor hv, in HypercallArgs a, List<GuestRange> into)
    {
        if (a.A1 != GrantTableHypercalls.SetupTable) return;
        if (hv.Mm.PeekGuest32(a.A2 + 4) is { } nr && hv.Mm.PeekGuest32(a.A2 + 12) is { } list) Add(into, list, (ulong)nr * 4);
    }

    /// <summary>vcpu_op: get_runstate_info fills a vcpu_runstate_info; register_runstate_memory_area fills the area it names.</summary>
    public static void VcpuOp(Hypervisor hv, in HypercallArgs a, List<GuestRange> into)
    {
        if (a.A1 == VcpuHypercalls.GetRunstateInfo) Add(into, a.A3, RunstateInfoSize);
        else if (a.A1 == VcpuHypercalls.RegisterRunstateMemoryArea && hv.Mm.PeekGuest32(a.A3) is { } area) Add(into, area, RunstateInfoSize);
    }

    private const int RunstateInfoSize = 44;

    /// <summary>event_channel_op: the command's argument struct, copied back for commands with outputs.</summary>
    public static void EventChannelOp(Hypervisor hv, in HypercallArgs a, List<GuestRange> into) =>
        Add(into, a.A2, (ulong)EventHypercalls.ArgSize(a.A1));

    /// <summary>physdev_op: irq_status_query writes its {irq, flags} struct.</summary>
    public static void PhysdevOp(Hypervisor hv, in HypercallArgs a, List<GuestRange> into)
    {
        if (a.A1 == PhysdevHypercalls.IrqStatusQuery) Add(into, a.A2, 8);
    }
}
