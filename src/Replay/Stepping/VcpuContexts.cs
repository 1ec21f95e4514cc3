using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Xen;

namespace Replayvisor.Replay.Stepping;

/// <summary>
/// A debugger's look at every vCPU of the machine (docs/gdbserver.md "vCPUs as threads"): the
/// running vCPU's registers and memory are the CPU's; another vCPU's are its parked context in the
/// Xen model (<see cref="Hypervisor.Parked"/>: the registers saved when it was switched out, or
/// those VCPUOP_initialise gave it) and memory through its own page tables. A vCPU exists for a
/// debugger once it has a context: vCPU 0 from the start, the others from their VCPUOP_initialise
/// (one never initialised has no registers at all). Looking changes nothing.
/// </summary>
public static class VcpuContexts
{
    /// <summary>The vCPUs that have a context, in id order.</summary>
    public static IReadOnlyList<int> Existing(XenMachine machine)
    {
        ArgumentNullException.ThrowIfNull(machine);
        var list = new List<int>();
        for (int id = 0; id < machine.Hypervisor.Vcpus.Length; id++)
            if (Exists(machine, id)) list.Add(id);
        return list;
    }

    /// <summary>Whether vCPU <paramref name="id"/> is modelled and has a context (running or parked).</summary>
    public static bool Exists(XenMachine machine, int id)
    {
        ArgumentNullException.ThrowIfNull(machine);
        var hv = machine.Hypervisor;
        return id >= 0 && id < hv.Vcpus.Length && (id == hv.CurrentVcpu || hv.Parked(id) != null);
    }

    /// <summary>vCPU <paramref name="id"/>'s registers (a copy), or null if it has no context.</summary>
    public static CpuSnapshot? Registers(XenMachine machine, int id)
    {
        if (!Exists(machine, id)) return null;
        return id == machine.Hypervisor.CurrentVcpu ? machine.Cpu.SaveContext() : machine.Hypervisor.Parked(id)!.Cpu;
    }

    /// <summary>Guest memory as vCPU <paramref name="id"/> sees it (its CR3), or null if it has no context.</summary>
    public static GuestView? View(TraceReplayer replayer, int id)
    {
        ArgumentNullException.ThrowIfNull(replayer);
        var m = replayer.Machine;
        if (!Exists(m, id)) return null;
        return id == m.Hypervisor.CurrentVcpu ? replayer.View : new GuestView(m.Cpu, m.Hypervisor.Parked(id)!.Cpu);
    }

    /// <summary>
    /// The scheduler's view of vCPU <paramref name="id"/>: "running" (on the CPU), "runnable" (waiting
    /// for the CPU), "blocked" (SCHEDOP_block) or "polling" (SCHEDOP_poll), either with ", on the CPU"
    /// when it is the vCPU the machine idles in; "down" (VCPUOP_down, or initialised and not yet up),
    /// "up, not woken" (4.19's VGCF_online quirk, docs/xen-model.md), "not initialised".
    /// </summary>
    public static string State(XenMachine machine, int id)
    {
        ArgumentNullException.ThrowIfNull(machine);
        var hv = machine.Hypervisor;
        if (id < 0 || id >= hv.Vcpus.Length) return "not modelled";
        var v = hv.Vcpus[id];
        if (!Exists(machine, id)) return "not initialised";
        if (!v.Up) return "down";
        if (v.NotWoken) return "up, not woken";
        bool current = id == hv.CurrentVcpu;
        if (v.Blocked) return (v.Polling ? "polling" : "blocked") + (current ? ", on the CPU" : "");
        return current ? "running" : "runnable";
    }
}
