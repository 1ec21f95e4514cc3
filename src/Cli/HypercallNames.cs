using Replayvisor.Engine.Trace;

namespace Replayvisor.Cli;

/// <summary>Hypercall names for display (xen-abi.md §1.1).</summary>
public static class HypercallNames
{
    // TODO(merge): replace with the Xen model's declarative hypercall table.
    private static readonly string[] Names =
    [
        "set_trap_table", "mmu_update", "set_gdt", "stack_switch", "set_callbacks", "fpu_taskswitch", "sched_op_compat",
        "platform_op", "set_debugreg", "get_debugreg", "update_descriptor", "unused11", "memory_op", "multicall",
        "update_va_mapping", "set_timer_op", "event_channel_op_compat", "xen_version", "console_io", "physdev_op_compat",
        "grant_table_op", "vm_assist", "update_va_mapping_otherdomain", "iret", "vcpu_op", "set_segment_base", "mmuext_op",
        "xsm_op", "nmi_op", "sched_op", "callback_op", "xenoprof_op", "event_channel_op", "physdev_op",
    ];

    public static string Name(int number) => number >= 0 && number < Names.Length ? Names[number] : $"hypercall{number}";

    public static string Describe(HypercallEvent h)
    {
        var args = h.Args.AsSpan().ToArray();
        string text = $"{Name(h.Number)}({string.Join(", ", args.Select(a => $"0x{a:x}"))}) = {h.Result}";
        if (h.Multicall.Count > 0)
            text += " [" + string.Join(", ", h.Multicall.AsSpan().ToArray().Select(m => $"{Name(m.Op)}={m.Result}")) + "]";
        return text;
    }
}
