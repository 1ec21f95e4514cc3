using System.Runtime.CompilerServices;
using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Xen.Hypercalls;

namespace Replayvisor.Engine.Xen;

/// <summary>Hypercall entry (entry.S "hypercall"): number in EAX, arguments in EBX..EBP, result in EAX (§1).</summary>
public sealed partial class Hypervisor
{
    private readonly List<uint> _grantFrames = [];

    internal bool InMulticall { get; set; }
    internal List<MulticallResult> MulticallResults { get; } = [];
    public IReadOnlyList<uint> GrantFrames => _grantFrames;

    /// <summary>
    /// Test hook: called with the hypercall number for every byte run a hypercall wrote into guest
    /// memory outside the buffers its table row declares (there should be none). Setting it turns
    /// the output capture on even without an observer.
    /// </summary>
    public Action<int, GuestWriteRecord>? UndeclaredWrite { get; set; }

    private readonly HypercallOutputCapture _capture = new();
    private readonly List<GuestWriteRecord> _writes = [], _inside = [], _outside = [];
    private bool _capturing;
    // Array.Empty's array in a field: at every observed hypercall the JIT called HypercallOutput.None
    // and Array.Empty's static lookup instead of inlining them (perf, ticker recording and replay).
    private readonly GuestWriteRecord[] _noWrites = Array.Empty<GuestWriteRecord>();

    // No zeroing of the frame's structs at every call (each is written before it is read).
    [SkipLocalsInit]
    private void Hypercall()
    {
        var c = Cpu;
        int nr = (int)c.Eax;
        var args = new HypercallArgs(c.Ebx, c.Ecx, c.Edx, c.Esi, c.Edi, c.Ebp);
        bool observed = Observer != null;
        // A call whose table row declares no written buffer (set_timer_op, sched_op, iret: most calls
        // of a timer-driven guest) has nothing inside a declared buffer, so its output is its site and
        // digest 0 without logging its writes; only the UndeclaredWrite hook wants them.
        bool capturing = UndeclaredWrite != null || observed && _table[nr] is { DeclaresWrites: true };
        if (capturing != _capturing) _capturing = capturing;
        // The capture lists are reused from call to call: the observer reads them before this returns.
        // Guest.WriteLog is null between calls; only a capturing call sets it (and clears the lists it reads).
        List<GuestWriteRecord>? writes = null;
        if (capturing)
        {
            (writes = _writes).Clear();
            _capture.Clear();
            Guest.WriteLog = writes;
        }
        uint site = observed ? HypercallSite(nr) : 0;
        MulticallResults.Clear();
        long result = Call(nr, args);
        // Read before taken: most calls leave none, and taking one copies and clears the whole struct.
        if (_continuation.HasValue && TakeContinuation() is { } k) { ApplyContinuation(k); result = k.Nr; }
        if (capturing) Guest.WriteLog = null;
        SyncRunstates(); // after the call's own writes: a runstate area written here is the scheduler's, not the call's
        c.Eax = (uint)result;
        if (!observed && writes == null) return;
        // Most observed calls wrote nothing into a declared buffer and are no multicall: their output is
        // the site and digest 0, and the recorder takes them without an output or a span being built.
        if (_trace != null && nr != MulticallNr && writes is not { Count: > 0 })
        {
            _trace.OnPlainHypercall(c.Icount, nr, in args, result, site, _current);
            return;
        }
        ObserveHypercall(nr, in args, result, site, writes);
    }

    /// <summary>
    /// Reports a hypercall that wrote guest memory or was a multicall (or any call, to an observer other
    /// than the recorder's <see cref="Session.TraceObserver"/>). Out of <see cref="Hypercall"/>: with it
    /// inline the JIT ran out of inlining budget there and called even the span conversions.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private void ObserveHypercall(int nr, in HypercallArgs args, long result, uint site, List<GuestWriteRecord>? writes)
    {
        var c = Cpu;
        HypercallOutput output;
        if (writes?.Count > 0)
        {
            List<GuestWriteRecord> inside = _inside, outside = _outside;
            inside.Clear();
            outside.Clear();
            _capture.Split(writes, inside, outside);
            foreach (var w in outside) UndeclaredWrite?.Invoke(nr, w);
            output = new HypercallOutput(site, inside, HypercallOutputCapture.Digest(inside));
        }
        else output = new HypercallOutput(site, _noWrites, 0); // HypercallOutput.None when site is 0
        var entries = nr == MulticallNr ? System.Runtime.InteropServices.CollectionsMarshal.AsSpan(MulticallResults) : default;
        if (_trace != null) _trace.OnHypercall(c.Icount, nr, in args, result, entries, in output, _current);
        else Observer?.OnHypercall(c.Icount, nr, args, result, entries, output);
    }

    /// <summary>__HYPERVISOR_multicall (docs/xen-abi.md; HypercallTable): its entries' results go to the observer with the call.</summary>
    private const int MulticallNr = 13;

    /// <summary>
    /// The guest code address that issued the hypercall now trapping (EIP is past its 2-byte
    /// <c>int $0x82</c>): for a call through a hypercall-page stub (docs/xen-abi.md §1) the caller's
    /// return address on the stack, read without side effects; iret (which never returns) and
    /// inline <c>int $0x82</c> give the instruction itself.
    /// </summary>
    private uint HypercallSite(int nr)
    {
        uint at = Cpu.Eip - 2;
        if (nr != Boot.HypercallPage.IretHypercall && _hypercallPage is uint page && at - page < 4096
            && Mm.PeekGuest32(Cpu.Segs[Seg.SS].Base + Cpu.Esp) is uint ret)
            return ret;
        return at;
    }

    /// <summary>Dispatches one hypercall (also each multicall entry) through the table.</summary>
    internal long Call(int nr, in HypercallArgs args)
    {
        var spec = (uint)nr < HypercallTable.NrHypercalls ? _table[nr] : null;
        if (spec == null)
        {
            Stats.UnknownHypercalls++;
            return -Errno.ENOSYS;
        }
        Stats.HypercallsByNumber[nr]++;
        if (_capturing) _capture.Declare(this, spec, args);
        return spec.Handler(this, args);
    }

    /// <summary>gnttab_grow_table: Xen-owned frames shared with the guest (it maps them by mfn).</summary>
    internal bool GrowGrantTable(uint frames)
    {
        while (_grantFrames.Count < frames)
        {
            uint mfn = Mm.AllocXenFrame();
            if (mfn == 0) return false;
            Cpu.Memory.ClearFrame(mfn);
            _grantFrames.Add(mfn);
        }
        return true;
    }
}
