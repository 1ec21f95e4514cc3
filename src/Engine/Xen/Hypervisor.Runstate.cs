using Replayvisor.Engine.State;

namespace Replayvisor.Engine.Xen;

/// <summary>One vCPU's struct vcpu_runstate_info as Xen keeps it: the state, when it began, and the time spent in each.</summary>
public readonly record struct Runstate(int State, ulong EntryNs, ulong Running, ulong Runnable, ulong Blocked, ulong Offline)
{
    public const int StateRunning = 0, StateRunnable = 1, StateBlocked = 2, StateOffline = 3;

    /// <summary>vcpu_runstate_change: the time since <see cref="EntryNs"/> goes to the old state.</summary>
    public Runstate ChangeTo(int state, ulong now)
    {
        ulong d = now > EntryNs ? now - EntryNs : 0;
        var r = State switch
        {
            StateRunning => this with { Running = Running + d },
            StateRunnable => this with { Runnable = Runnable + d },
            StateBlocked => this with { Blocked = Blocked + d },
            _ => this with { Offline = Offline + d },
        };
        return r with { State = state, EntryNs = now };
    }

    /// <summary>The 44-byte vcpu_runstate_info; with <paramref name="now"/>, vcpu_runstate_get's view (the current state's time up to now).</summary>
    public byte[] Encode(ulong? now)
    {
        var r = now is ulong n ? ChangeTo(State, n) with { EntryNs = EntryNs } : this;
        var b = new byte[44];
        BitConverter.TryWriteBytes(b.AsSpan(0), State);
        BitConverter.TryWriteBytes(b.AsSpan(4), EntryNs);
        BitConverter.TryWriteBytes(b.AsSpan(12), r.Running);
        BitConverter.TryWriteBytes(b.AsSpan(20), r.Runnable);
        BitConverter.TryWriteBytes(b.AsSpan(28), r.Blocked);
        BitConverter.TryWriteBytes(b.AsSpan(36), r.Offline);
        return b;
    }
}

/// <summary>
/// Runstate accounting with several vCPUs (docs/xen-model.md "Runstate"): each vCPU's runstate
/// changes when Xen's would — the running vCPU leaves running for blocked, runnable or offline
/// (sched_switch_units), a blocked or offline vCPU that becomes runnable goes to runnable
/// (vcpu_wake), a runnable one taken down goes offline (vcpu_sleep_nosync), and the vCPU the
/// scheduler picks goes to running. Every vCPU is created at system time 0, vCPU 0 running and the
/// others offline. States are compared after every hypercall, timer run and scheduling decision;
/// the clock is read only when one changed, so a host-clock recording reads it at the same points
/// in replay. One vCPU keeps the older bookkeeping (<see cref="RunstateInfo()"/>).
/// </summary>
public sealed partial class Hypervisor
{
    private Runstate[] _runstates = [];

    /// <summary>The runstate bookkeeping of vCPU <paramref name="id"/> (several vCPUs only).</summary>
    public Runstate RunstateOf(int id) => _runstates[id];

    private static Runstate[] CreateRunstates(int count) =>
        [.. Enumerable.Range(0, count).Select(i => new Runstate(i == 0 ? Runstate.StateRunning : Runstate.StateOffline, 0, 0, 0, 0, 0))];

    private int TargetState(VcpuState v, int state)
    {
        bool running = v.Id == _current && Runnable(v);
        if (running) return Runstate.StateRunning;
        return state switch
        {
            Runstate.StateRunning => v.Blocked ? Runstate.StateBlocked : Runnable(v) ? Runstate.StateRunnable : Runstate.StateOffline,
            Runstate.StateRunnable => Runnable(v) ? Runstate.StateRunnable : Runstate.StateOffline,
            _ => Runnable(v) ? Runstate.StateRunnable : state,
        };
    }

    /// <summary>
    /// Applies the runstate changes since the last call (several vCPUs only; reads the clock only if
    /// one changed). The running vCPU leaving running (to idle) has its runstate area written, as
    /// context_switch's _update_runstate_area(prev) does.
    /// </summary>
    internal void SyncRunstates()
    {
        if (!Smp) return;
        ulong? now = null;
        for (int i = 0; i < Vcpus.Length; i++)
        {
            int from = _runstates[i].State, to = TargetState(Vcpus[i], from);
            if (to == from) continue;
            now ??= NowNs;
            _runstates[i] = _runstates[i].ChangeTo(to, now.Value);
            if (i == _current && from == Runstate.StateRunning) WriteRunstateArea();
        }
    }

    /// <summary>
    /// context_switch's start: the running vCPU is descheduled (sched_switch_units: blocked, else
    /// runnable, else offline) and its runstate area written while its address space is loaded.
    /// </summary>
    private void DescheduleRunstate()
    {
        if (!Smp) return;
        SyncRunstates();
        var v = Vcpu;
        if (_runstates[v.Id].State != Runstate.StateRunning) return;
        int to = v.Blocked ? Runstate.StateBlocked : Runnable(v) ? Runstate.StateRunnable : Runstate.StateOffline;
        _runstates[v.Id] = _runstates[v.Id].ChangeTo(to, NowNs);
        WriteRunstateArea();
    }

    /// <summary>update_runstate_area of the running vCPU: its raw runstate, if it registered an area.</summary>
    private void WriteRunstateArea()
    {
        if (RunstateArea != 0) Guest.TryWrite(RunstateArea, _runstates[_current].Encode(null));
    }

    private void WriteRunstates(CanonicalWriter w)
    {
        foreach (var r in _runstates)
        {
            w.I32(r.State); w.U64(r.EntryNs);
            w.U64(r.Running); w.U64(r.Runnable); w.U64(r.Blocked); w.U64(r.Offline);
        }
    }
}
