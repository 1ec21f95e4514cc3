namespace Replayvisor.Engine.Xen.Hypercalls;

/// <summary>A hypercall implementation: the six argument registers in, the EAX result out.</summary>
public delegate long HypercallHandler(Hypervisor hv, in HypercallArgs a);

/// <summary>What an argument register holds (for tracing, dump and diff).</summary>
public enum ArgKind : byte { Unused, Value, Command, Count, Pointer, Selector, Address, TimeLo, TimeHi, DomId, Port, Vcpu, MachineAddrLo, MachineAddrHi, DescLo, DescHi, PteLo, PteHi, Flags }

/// <summary>Direction of a guest buffer access.</summary>
public enum BufferAccess : byte { Read, Write, ReadWrite }

/// <summary>Where a <see cref="BufferAccess.Write"/> buffer of variable shape lies for one call (read before the call runs).</summary>
public delegate void BufferResolver(Hypervisor hv, in HypercallArgs a, List<GuestRange> into);

/// <summary>
/// A guest buffer a hypercall touches: the pointer is argument <see cref="Arg"/> (0-based), elements of
/// <see cref="ElementSize"/> bytes; <see cref="CountArg"/> names the argument holding the element count,
/// or is <see cref="One"/> (one element) or <see cref="Varies"/> (per sub-command / list terminator).
/// <see cref="Arg"/> = -1 means the guest's ESP (HYPERVISOR_iret's frame). A written buffer of
/// varying shape has a <see cref="Resolve"/> that names its ranges for one call. The written
/// buffers drive what the trace captures of each call (<see cref="HypercallOutputCapture"/>).
/// </summary>
public readonly record struct GuestBuffer(int Arg, BufferAccess Access, int ElementSize, int CountArg, string Type, BufferResolver? Resolve = null)
{
    public const int One = -1, Varies = -2;

    public bool Written => Access != BufferAccess.Read;
}

/// <summary>One row of the hypercall table.</summary>
public sealed record HypercallSpec(int Number, string Name, ArgKind[] Args, GuestBuffer[] Memory, HypercallHandler Handler)
{
    /// <summary>Handled by the page-type/MMU model (Xen/Mm/MemoryManager).</summary>
    public bool MemoryManager { get; init; }

    /// <summary>Some buffer of the row is written: only such a call can write inside a declared buffer (<see cref="HypercallOutputCapture"/>).</summary>
    public bool DeclaresWrites { get; } = Memory.Any(b => b.Written);
}

/// <summary>
/// The declarative table of every x86_32 hypercall number (docs/xen-abi.md §1.1). It drives dispatch
/// (including multicall entries), the statistics, and what a recorder logs; numbers without a row,
/// and numbers ≥ 64, return -ENOSYS.
/// </summary>
public sealed class HypercallTable
{
    public const int NrHypercalls = 64;

    public static readonly HypercallTable Instance = new();

    private readonly HypercallSpec?[] _rows = new HypercallSpec?[NrHypercalls];

    private static ArgKind[] A(params ArgKind[] k) => k;
    private static GuestBuffer[] M(params GuestBuffer[] b) => b;
    private static GuestBuffer R(int arg, int size, int count, string type) => new(arg, BufferAccess.Read, size, count, type);
    private static GuestBuffer W(int arg, int size, int count, string type) => new(arg, BufferAccess.Write, size, count, type);
    private static GuestBuffer RW(int arg, int size, int count, string type) => new(arg, BufferAccess.ReadWrite, size, count, type);
    private static GuestBuffer RWv(int arg, string type, BufferResolver resolve) => new(arg, BufferAccess.ReadWrite, 1, GuestBuffer.Varies, type, resolve);
    private static GuestBuffer Wv(int arg, string type, BufferResolver resolve) => new(arg, BufferAccess.Write, 1, GuestBuffer.Varies, type, resolve);
    private const int One = GuestBuffer.One, Varies = GuestBuffer.Varies;

    private HypercallTable()
    {
        const ArgKind V = ArgKind.Value, C = ArgKind.Command, N = ArgKind.Count, P = ArgKind.Pointer, S = ArgKind.Selector,
            Ad = ArgKind.Address, D = ArgKind.DomId;
        Add(0, "set_trap_table", A(P), M(R(0, 8, Varies, "trap_info[] up to address 0")), TrapHypercalls.SetTrapTable);
        Add(1, "mmu_update", A(P, N, P, D), M(R(0, 16, 1, "mmu_update[]"), W(2, 4, One, "done")), MmHypercalls.MmuUpdate, mm: true);
        Add(2, "set_gdt", A(P, N), M(R(0, 4, Varies, "mfn[ceil(entries/512)]")), MmHypercalls.SetGdt, mm: true);
        Add(3, "stack_switch", A(S, Ad), M(), TrapHypercalls.StackSwitch);
        Add(4, "set_callbacks", A(S, Ad, S, Ad), M(), TrapHypercalls.SetCallbacks);
        Add(5, "fpu_taskswitch", A(V), M(), TrapHypercalls.FpuTaskswitch);
        Add(6, "sched_op_compat", A(C, V), M(), SchedHypercalls.SchedOpCompat);
        Add(7, "platform_op", A(P), M(RW(0, 136, One, "xen_platform_op")), ToolstackHypercalls.PlatformOp);
        Add(8, "set_debugreg", A(V, V), M(), TrapHypercalls.SetDebugreg);
        Add(9, "get_debugreg", A(V), M(), TrapHypercalls.GetDebugreg);
        Add(10, "update_descriptor", A(ArgKind.MachineAddrLo, ArgKind.MachineAddrHi, ArgKind.DescLo, ArgKind.DescHi), M(), MmHypercalls.UpdateDescriptor, mm: true);
        Add(12, "memory_op", A(C, P), M(RWv(1, "per XENMEM_ command", HypercallBuffers.MemoryOp)), MemoryHypercalls.MemoryOp);
        Add(13, "multicall", A(P, N), M(RW(0, 32, 1, "multicall_entry[] (result written back)")), MulticallHypercall.Multicall);
        Add(14, "update_va_mapping", A(Ad, ArgKind.PteLo, ArgKind.PteHi, ArgKind.Flags), M(), MmHypercalls.UpdateVaMapping, mm: true);
        Add(15, "set_timer_op", A(ArgKind.TimeLo, ArgKind.TimeHi), M(), SchedHypercalls.SetTimerOp);
        Add(16, "event_channel_op_compat", A(P), M(RW(0, 28, One, "evtchn_op")), EventHypercalls.EventChannelOpCompat);
        Add(17, "xen_version", A(C, P), M(RWv(1, "per XENVER_ command", HypercallBuffers.XenVersion)), VersionHypercall.XenVersion);
        Add(18, "console_io", A(C, N, P), M(RW(2, 1, 1, "bytes (read for write, written for read)")), ConsoleHypercall.ConsoleIo);
        Add(19, "physdev_op_compat", A(P), M(RW(0, 16, One, "physdev_op")), PhysdevHypercalls.PhysdevOpCompat);
        Add(20, "grant_table_op", A(C, P, N), M(RW(1, 16, 2, "gnttab_* op"), Wv(1, "setup_table frame_list", HypercallBuffers.GrantFrameList)), GrantTableHypercalls.GrantTableOp);
        Add(21, "vm_assist", A(C, V), M(), MmHypercalls.VmAssist, mm: true);
        Add(22, "update_va_mapping_otherdomain", A(Ad, ArgKind.PteLo, ArgKind.PteHi, ArgKind.Flags, D), M(), MmHypercalls.UpdateVaMappingOtherdomain, mm: true);
        Add(23, "iret", A(), M(R(-1, 4, Varies, "iret frame at ESP")), TrapHypercalls.Iret);
        Add(24, "vcpu_op", A(C, ArgKind.Vcpu, P), M(RWv(2, "per VCPUOP_ command", HypercallBuffers.VcpuOp)), VcpuHypercalls.VcpuOp);
        Add(26, "mmuext_op", A(P, N, P, D), M(R(0, 12, 1, "mmuext_op[]"), W(2, 4, One, "done")), MmHypercalls.MmuextOp, mm: true);
        Add(27, "acm_op", A(P), M(), NotImplemented);
        Add(28, "nmi_op", A(C, P), M(R(1, 8, One, "xennmi_callback")), TrapHypercalls.NmiOp);
        Add(29, "sched_op", A(C, P), M(R(1, 1, Varies, "per SCHEDOP_ command")), SchedHypercalls.SchedOp);
        Add(30, "callback_op", A(C, P), M(R(1, 12, One, "callback_register/unregister")), TrapHypercalls.CallbackOp);
        Add(31, "xenoprof_op", A(C, P), M(), NotImplemented);
        Add(32, "event_channel_op", A(C, P), M(RWv(1, "per EVTCHNOP_ command", HypercallBuffers.EventChannelOp)), EventHypercalls.EventChannelOp);
        Add(33, "physdev_op", A(C, P), M(RWv(1, "per PHYSDEVOP_ command", HypercallBuffers.PhysdevOp)), PhysdevHypercalls.PhysdevOp);
        Add(34, "hvm_op", A(C, P), M(), NotImplemented);
        Add(35, "sysctl", A(P), M(R(0, 136, One, "xen_sysctl")), ToolstackHypercalls.Sysctl);
        Add(36, "domctl", A(P), M(R(0, 144, One, "xen_domctl")), ToolstackHypercalls.Domctl);
        Add(37, "kexec_op", A(C, P), M(), ToolstackHypercalls.KexecOp);
        Add(38, "tmem_op", A(C, P), M(), ToolstackHypercalls.Absent);
        Add(39, "argo_op", A(C, P, P, V, V), M(), ToolstackHypercalls.Absent);
        Add(40, "xenpmu_op", A(C, P), M(), ToolstackHypercalls.XenpmuOp);
        Add(41, "dm_op", A(ArgKind.DomId, N, P), M(), ToolstackHypercalls.Absent);
        Add(42, "hypfs_op", A(C, P, V, P, V), M(), ToolstackHypercalls.HypfsOp);
        Add(48, "mca", A(P), M(R(0, 136, One, "xen_mc")), ToolstackHypercalls.Mca);
        Add(49, "paging_domctl_cont", A(P), M(R(0, 144, One, "xen_domctl")), ToolstackHypercalls.PagingDomctlCont);
    }

    private void Add(int nr, string name, ArgKind[] args, GuestBuffer[] mem, HypercallHandler h, bool mm = false) =>
        _rows[nr] = new HypercallSpec(nr, name, args, mem, h) { MemoryManager = mm };

    private static long NotImplemented(Hypervisor hv, in HypercallArgs a) => -Errno.ENOSYS;

    public HypercallSpec? this[int number] => (uint)number < NrHypercalls ? _rows[number] : null;

    public IEnumerable<HypercallSpec> Rows => _rows.Where(r => r != null)!;

    public static string NameOf(int number) => Instance[number]?.Name ?? $"hypercall_{number}";
}
