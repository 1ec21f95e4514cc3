using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.State;
using Replayvisor.Engine.Xen.Mm;

namespace Replayvisor.Engine.Xen;

/// <summary>
/// A vCPU that is not running (docs/xen-model.md, "Several vCPUs"): its CPU registers, its memory
/// context, and the runstate bookkeeping the model keeps for the running vCPU. Immutable: a
/// snapshot can share it. <see cref="FreshSelectors"/>: the segment registers hold only the
/// selectors of VCPUOP_initialise, loaded through the vCPU's own GDT when it first runs.
/// </summary>
public sealed record ParkedVcpu
{
    public required CpuSnapshot Cpu { get; init; }
    public required MmVcpuContext Mm { get; init; }
    public required bool FreshSelectors { get; init; }
    public required ulong BlockedNs { get; init; }
    public required ulong RunstateEntryNs { get; init; }
    public required uint RunstateArea { get; init; }

    public void WriteState(CanonicalWriter w)
    {
        X86Cpu.WriteContext(w, Cpu);
        Mm.WriteState(w);
        w.Bool(FreshSelectors);
        w.U64(BlockedNs); w.U64(RunstateEntryNs); w.U32(RunstateArea);
    }
}

/// <summary>
/// Several vCPUs on the one software CPU: which one runs, the parked contexts of the others, the
/// switch between them (Xen's context_switch: save, load, then the schedule-in of the incoming
/// vCPU) and the end of the running vCPU's quantum. The run loop (XenMachine) decides when.
/// </summary>
public sealed partial class Hypervisor
{
    /// <summary>Instructions a vCPU runs before the next runnable one gets the CPU (docs/xen-model.md).</summary>
    public const ulong VcpuQuantum = 50_000;

    private int _current;
    private ParkedVcpu?[] _parked = [];
    private ulong _sliceEnd;

    /// <summary>
    /// Called at the start of every <see cref="SwitchTo"/> with the incoming vCPU's id, at the count
    /// where the switch happens (before its schedule-in): a debugger's "vCPU N got the CPU"
    /// (docs/gdbserver.md "vCPUs as threads"). Not state; it must not change the machine.
    /// </summary>
    public Action<int>? Switching { get; set; }

    /// <summary>The running vCPU's id.</summary>
    public int CurrentVcpu => _current;

    /// <summary>More than one vCPU is modelled (the scheduler has work to do).</summary>
    public bool Smp => Vcpus.Length > 1;

    /// <summary>The instruction count at which the running vCPU's quantum ends (SMP only; 0 before the first).</summary>
    public ulong SliceEnd => _sliceEnd;

    /// <summary>Runnable: brought up, woken into the scheduler and not blocked (Xen: no pause flag, on a run queue).</summary>
    public static bool Runnable(VcpuState v) => v.Up && !v.Blocked && !v.NotWoken;

    private static VcpuState[] CreateVcpus(int count)
    {
        if (count < 1 || count > HypervisorOptions.MaxVcpus)
            throw new ArgumentOutOfRangeException(nameof(count), $"the model builds 1..{HypervisorOptions.MaxVcpus} vCPUs, not {count}");
        var v = new VcpuState[count];
        // vCPU 0 is built initialised and running; the others are created down (VPF_down) and uninitialised.
        for (int i = 0; i < count; i++) v[i] = new VcpuState { Id = i, Up = i == 0, Initialised = i == 0 };
        return v;
    }

    /// <summary>
    /// The scheduler's choice at a quantum end or when the running vCPU blocks, yields or goes
    /// down: the next runnable vCPU after the running one in id order (round robin), or the running
    /// one if it alone is runnable; -1 when none is. A pure function of the vCPU states.
    /// </summary>
    public int PickNext()
    {
        int n = Vcpus.Length;
        for (int i = 1; i <= n; i++)
        {
            int id = (_current + i) % n;
            if (Runnable(Vcpus[id])) return id;
        }
        return -1;
    }

    /// <summary>Starts the next quantum of the running vCPU at <paramref name="icount"/>.</summary>
    public void StartSlice(ulong icount) => _sliceEnd = ulong.MaxValue - icount < VcpuQuantum ? ulong.MaxValue : icount + VcpuQuantum;

    /// <summary>SCHEDOP_yield with other vCPUs: the quantum ends now.</summary>
    internal void YieldSlice()
    {
        if (!Smp) return;
        _sliceEnd = Cpu.Icount;
        Cpu.RequestStop();
    }

    /// <summary>
    /// context_switch to <paramref name="next"/>: parks the running vCPU, loads the other's CPU and
    /// memory context, then its schedule-in (runstate area, time, periodic timer, pending events).
    /// </summary>
    public void SwitchTo(int next)
    {
        if (next == _current) return;
        Switching?.Invoke(next);
        DescheduleRunstate();
        _parked[_current] = new ParkedVcpu
        {
            Cpu = Cpu.SaveContext(), Mm = Mm.ParkContext(), FreshSelectors = false,
            BlockedNs = _blockedNs, RunstateEntryNs = _runstateEntryNs, RunstateArea = RunstateArea,
        };
        var p = _parked[next] ?? throw new InvalidOperationException($"vCPU {next} has no context to run");
        _parked[next] = null;
        _current = next;
        Cpu.LoadContext(p.Cpu);
        Mm.LoadContext(p.Mm);
        _blockedNs = p.BlockedNs;
        _runstateEntryNs = p.RunstateEntryNs;
        RunstateArea = p.RunstateArea;
        SyncRunstates();
        if (p.FreshSelectors)
        {
            EnterFirstTime();
            if (IsStopped) return;
        }
        Wake();
    }

    /// <summary>
    /// The first run of an initialised vCPU: Xen returns to it with the context's selectors, which
    /// load through the vCPU's own GDT — DS/ES/FS/GS at ring 0, then CS and SS by the iret
    /// (load_segments, compat_restore_all_guest). One that does not load bounces to the failsafe
    /// callback with the context's selectors in the frame (load_segments' failsafe frame, the
    /// iret fault's fixup), exactly as on any other return to the guest (<see cref="ReturnToGuest"/>).
    /// </summary>
    private void EnterFirstTime()
    {
        Capture();
        ReturnToGuest();
    }

    /// <summary>The parked context of a vCPU that is not running (null for the running one or one never initialised).</summary>
    public ParkedVcpu? Parked(int id) => _parked[id];

    private void WriteSmpState(CanonicalWriter w)
    {
        // Moved vcpu_info areas: written only once one has moved, so other states keep their hashes.
        if (Enumerable.Range(0, SharedInfo.MaxVcpuInfoSlots).Any(SharedInfo.IsMoved))
        {
            w.Tag("vcpu-info");
            for (int v = 0; v < SharedInfo.MaxVcpuInfoSlots; v++) w.U64(SharedInfo.IsMoved(v) ? SharedInfo.VcpuInfoAddress(v) : 0);
        }
        // Written only with several vCPUs (or a state that claims another is running), so one-vCPU hashes are unchanged.
        if (!Smp && _current == 0 && _sliceEnd == 0) return;
        w.Tag("smp");
        w.I32(_current);
        w.U64(_sliceEnd);
        foreach (var p in _parked)
        {
            w.Bool(p != null);
            p?.WriteState(w);
        }
        WriteRunstates(w);
    }
}
