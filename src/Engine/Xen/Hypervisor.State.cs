using System.Text;
using Replayvisor.Engine.State;

namespace Replayvisor.Engine.Xen;

/// <summary>
/// The Xen model's own state as plain data (deep copies; nothing shared with a live machine).
/// shared_info, the console/xenstore rings, grant frames' contents, the hypervisor area and page
/// tables are machine frames and travel with the RAM image.
/// </summary>
public sealed record HypervisorSnapshot
{
    /// <summary>Per-vcpu state (trap table, callbacks, kernel stack, timers, VIRQ bindings...), each a private copy.</summary>
    public required VcpuState[] Vcpus { get; init; }
    /// <summary>Every event channel, port 0 first.</summary>
    public required Channel[] Channels { get; init; }
    /// <summary>Console input waiting for the PV ring (domU) / the console_io read queue (dom0), oldest first.</summary>
    public required byte[] ConsoleRingInput { get; init; }
    public required byte[] ConsoleIoInput { get; init; }
    public required PitState Pit { get; init; }
    public required uint[] GrantFrames { get; init; }
    public required ulong NextTimeRefreshNs { get; init; }
    public required ulong BlockedNs { get; init; }
    public required ulong RunstateEntryNs { get; init; }
    public required uint RunstateArea { get; init; }
    public required ShutdownKind Shutdown { get; init; }
    public required string ShutdownDetail { get; init; }
    /// <summary>The last captured guest frame (scratch between deliveries; kept so a restore is exact).</summary>
    public required GuestFrame Frame { get; init; }
    /// <summary>The fault-storm guard: the instruction count of the last deliveries and how many there were at it.</summary>
    public ulong StormIcount { get; init; } = ulong.MaxValue;
    public int StormDeliveries { get; init; }
    /// <summary>The guest has written to its PV console ring (display only: <see cref="ConsoleView.Auto"/>).</summary>
    public bool RingConsoleUsed { get; init; }
    /// <summary>xenstored: the tree, watches and transactions, and the store ring's bytes it holds each way.</summary>
    public Xenstore.XenstoredSnapshot? Xenstore { get; init; }
    public byte[] XenstorePartialRequest { get; init; } = [];
    public byte[] XenstoreReplies { get; init; } = [];
    /// <summary>The running vCPU, the parked contexts of the others (null for the running one and uninitialised ones) and the quantum's end.</summary>
    public int CurrentVcpu { get; init; }
    public ParkedVcpu?[] Parked { get; init; } = [];
    public ulong SliceEnd { get; init; }
    /// <summary>Machine addresses of vcpu_info areas moved by VCPUOP_register_vcpu_info (0 = in shared_info), vCPU order.</summary>
    public ulong[] VcpuInfoMoved { get; init; } = [];
    /// <summary>Each vCPU's runstate (several vCPUs only; empty with one).</summary>
    public Runstate[] Runstates { get; init; } = [];
}

public sealed partial class Hypervisor : IStateHashable
{
    public HypervisorSnapshot Snapshot()
    {
        if (InMulticall) throw new InvalidOperationException("cannot snapshot the Xen model inside a hypercall");
        return new HypervisorSnapshot
        {
            Vcpus = [.. Vcpus.Select(v => v.Clone())],
            Channels = Events.SnapshotChannels(),
            ConsoleRingInput = Console.SnapshotRingInput(),
            ConsoleIoInput = Console.SnapshotConsoleIoInput(),
            Pit = _pit.Snapshot(),
            GrantFrames = [.. _grantFrames],
            NextTimeRefreshNs = _nextTimeRefreshNs,
            BlockedNs = _blockedNs,
            RunstateEntryNs = _runstateEntryNs,
            RunstateArea = RunstateArea,
            Shutdown = Shutdown,
            ShutdownDetail = ShutdownDetail,
            Frame = _f,
            StormIcount = _stormIcount,
            StormDeliveries = _stormDeliveries,
            RingConsoleUsed = _ringUsed,
            Xenstore = Console.Xenstore.Snapshot(),
            XenstorePartialRequest = Console.SnapshotXenstoreStreams().Partial,
            XenstoreReplies = Console.SnapshotXenstoreStreams().Replies,
            CurrentVcpu = _current,
            Parked = (ParkedVcpu?[])_parked.Clone(),
            SliceEnd = _sliceEnd,
            VcpuInfoMoved = SharedInfo.SnapshotMoved(),
            Runstates = (Runstate[])_runstates.Clone(),
        };
    }

    /// <summary>
    /// Restores the model's state (copies out of <paramref name="s"/>, which stays reusable). The
    /// CPU and RAM are restored by the machine alongside; observers, sinks and statistics are untouched.
    /// </summary>
    public void Restore(HypervisorSnapshot s)
    {
        ArgumentNullException.ThrowIfNull(s);
        if (s.Vcpus.Length != Vcpus.Length) throw new ArgumentException("vcpu count differs", nameof(s));
        // The live VcpuState objects are shared with EventChannels: copy into them, never replace them.
        for (int i = 0; i < Vcpus.Length; i++) Vcpus[i].CopyFrom(s.Vcpus[i]);
        Events.RestoreChannels(s.Channels);
        Console.RestoreInput(s.ConsoleRingInput, s.ConsoleIoInput);
        _pit.Restore(s.Pit);
        _grantFrames.Clear();
        _grantFrames.AddRange(s.GrantFrames);
        _nextTimeRefreshNs = s.NextTimeRefreshNs;
        _blockedNs = s.BlockedNs;
        _runstateEntryNs = s.RunstateEntryNs;
        RunstateArea = s.RunstateArea;
        Shutdown = s.Shutdown;
        ShutdownDetail = s.ShutdownDetail;
        _f = s.Frame;
        _stormIcount = s.StormIcount;
        _stormDeliveries = s.StormDeliveries;
        _ringUsed = s.RingConsoleUsed;
        if (s.Xenstore != null) Console.Xenstore.Restore(s.Xenstore);
        Console.RestoreXenstoreStreams(s.XenstorePartialRequest, s.XenstoreReplies);
        if (s.Parked.Length != _parked.Length) throw new ArgumentException("vcpu count differs", nameof(s));
        _current = s.CurrentVcpu;
        s.Parked.CopyTo(_parked, 0);
        _sliceEnd = s.SliceEnd;
        if (s.VcpuInfoMoved.Length > 0) SharedInfo.RestoreMoved(s.VcpuInfoMoved);
        if (s.Runstates.Length != _runstates.Length) throw new ArgumentException("vcpu count differs", nameof(s));
        s.Runstates.CopyTo(_runstates, 0);
        InMulticall = false;
        MulticallResults.Clear();
        _ioDone = false;
    }

    /// <summary>
    /// Canonical encoding of everything in the model that can change what the guest sees next, in
    /// a fixed order: configuration, vcpus (index order), event channels (port order), console
    /// input queues (FIFO order), PIT, grant frames (grant order), time/runstate bookkeeping and
    /// the shutdown state. Not hashed: statistics, observers and sinks, and the scratch of one
    /// entry into Xen (the captured guest frame, multicall results, the I/O emulation flag), which
    /// every entry rewrites before reading.
    /// </summary>
    public void WriteState(CanonicalWriter w)
    {
        ArgumentNullException.ThrowIfNull(w);
        w.Tag("xen");
        w.U16(Domid);
        w.Bool(Privileged);
        w.U64(Options.PeriodicTimerNs);
        w.U64(Options.TimeRefreshNs);
        // Written only for profiles after 3.1, so the states (and golden traces) of 3.1 runs keep their hashes.
        if (Abi != XenAbi.Xen3_1) { w.Tag("abi"); w.U8((byte)Abi); }
        w.I32(Vcpus.Length);
        foreach (var v in Vcpus) v.WriteState(w);
        WriteSmpState(w);
        Events.WriteState(w);
        Console.WriteState(w);
        _pit.WriteState(w);
        w.Tag("xen-fields");
        w.I32(_grantFrames.Count);
        foreach (uint g in _grantFrames) w.U32(g);
        w.U64(_nextTimeRefreshNs);
        w.U64(_blockedNs);
        w.U64(_runstateEntryNs);
        w.U32(RunstateArea);
        w.U8((byte)Shutdown);
        w.Bytes(Encoding.UTF8.GetBytes(ShutdownDetail));
    }
}
