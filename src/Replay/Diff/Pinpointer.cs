using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Inputs;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Session;
using Replayvisor.Engine.Trace;

namespace Replayvisor.Replay.Diff;

/// <summary>How to re-execute the two runs.</summary>
public sealed record PinpointOptions
{
    /// <summary>State hashes taken per run in each narrowing pass.</summary>
    public int ProbesPerPass { get; init; } = 32;
    /// <summary>Test hook: wraps run A's (or B's) replay inputs, e.g. to inject an engine perturbation into the re-execution.</summary>
    public Func<IRunInputs, IRunInputs>? WrapInputsA { get; init; }
    public Func<IRunInputs, IRunInputs>? WrapInputsB { get; init; }
}

public sealed class PinpointException(string message) : Exception(message);

/// <summary>A register of both runs.</summary>
public sealed record RegisterDifference(string Name, uint A, uint B);

/// <summary>A range of guest memory that differs: its guest virtual address (0 when unmapped in the kernel's direct map), symbol and bytes.</summary>
public sealed record MemoryDifference(ulong Physical, uint Virtual, string Symbol, byte[] A, byte[] B);

/// <summary>One run at the last instruction boundary where both states still agree.</summary>
public sealed record MachineView(uint Eip, string Instruction);

/// <summary>
/// The first instruction after which the two runs' architectural states differ: executed at
/// <see cref="Icount"/> (both states equal before it, different after it).
/// </summary>
public sealed record PinpointResult(
    ulong Icount, MachineView A, MachineView B, IReadOnlyList<RegisterDifference> Registers, IReadOnlyList<MemoryDifference> Memory,
    ulong StartIcount, int Passes, ulong InstructionsExecuted);

/// <summary>
/// Re-executes two recordings of one guest image to find the first instruction whose result
/// differs (docs/diff.md "Pinpointing"): starting from the last checkpoint both recordings agree
/// on, each pass replays both runs with state hashes (XenMachine.StateHash) at evenly spaced
/// instruction counts of the remaining window, taken at pure input polls so the probes never
/// change the run; the window shrinks to the first probe that differs until it is one
/// instruction wide, then both states are compared register by register and byte by byte.
/// </summary>
public static class Pinpointer
{
    public static PinpointResult Find(TraceReader a, TraceReader b, ulong divergence, PinpointOptions options)
    {
        var eventsA = a.ReadEvents().ToList();
        var eventsB = b.ReadEvents().ToList();
        ulong lo = LastCommonCheckpoint(eventsA, eventsB, divergence);
        ulong end = Math.Min(a.Summary?.FinalIcount ?? ulong.MaxValue, b.Summary?.FinalIcount ?? ulong.MaxValue);
        ulong hi = Math.Min(divergence + 1, end);
        ulong executed = 0;
        int passes = 0;
        // The window [lo, hi]: states equal at lo, different at hi.
        if (!Differs(Probe(a, eventsA, [hi], options.WrapInputsA, ref executed), Probe(b, eventsB, [hi], options.WrapInputsB, ref executed), hi))
        {
            passes++;
            if (hi == end || !Differs(Probe(a, eventsA, [end], options.WrapInputsA, ref executed), Probe(b, eventsB, [end], options.WrapInputsB, ref executed), end))
                throw new PinpointException($"the two runs' machine states agree up to instruction {end}: the difference is not in architectural state");
            hi = end;
        }
        passes++;
        while (hi - lo > 1)
        {
            var probes = Spread(lo, hi, options.ProbesPerPass);
            var ha = Probe(a, eventsA, probes, options.WrapInputsA, ref executed);
            var hb = Probe(b, eventsB, probes, options.WrapInputsB, ref executed);
            passes++;
            ulong newLo = lo, newHi = hi;
            foreach (ulong p in probes)
            {
                if (Differs(ha, hb, p)) { newHi = p; break; }
                newLo = p;
            }
            (lo, hi) = (newLo, newHi);
        }
        var (viewA, stateA, virtualOf) = Inspect(a, eventsA, lo, options.WrapInputsA, ref executed);
        var (viewB, stateB, _) = Inspect(b, eventsB, lo, options.WrapInputsB, ref executed);
        passes++;
        var symbols = GuestSymbols.FromImage(a.GuestImage.Span);
        return new PinpointResult(lo, viewA, viewB, Registers(stateA.Cpu, stateB.Cpu), Memory(stateA.Ram, stateB.Ram, virtualOf, symbols),
            LastCommonCheckpoint(eventsA, eventsB, divergence), passes, executed);
    }

    /// <summary>The highest checkpoint at or before the divergence with the same count and hash in both recordings (0 when none).</summary>
    public static ulong LastCommonCheckpoint(IEnumerable<TraceEvent> a, IEnumerable<TraceEvent> b, ulong before)
    {
        var hb = b.OfType<CheckpointEvent>().Where(c => c.Icount <= before).ToDictionary(c => c.Icount, c => c.StateHash);
        ulong best = 0;
        foreach (var c in a.OfType<CheckpointEvent>())
            if (c.Icount <= before && hb.TryGetValue(c.Icount, out var h) && h == c.StateHash) best = Math.Max(best, c.Icount);
        return best;
    }

    private static List<ulong> Spread(ulong lo, ulong hi, int n)
    {
        var list = new SortedSet<ulong>();
        ulong width = hi - lo;
        for (int i = 1; i <= n; i++)
        {
            ulong p = lo + (ulong)((UInt128)width * (ulong)i / (ulong)(n + 1));
            if (p > lo && p < hi) list.Add(p);
        }
        list.Add(hi);
        return [.. list];
    }

    private static bool Differs(Dictionary<ulong, byte[]> a, Dictionary<ulong, byte[]> b, ulong at) =>
        !a.TryGetValue(at, out var x) || !b.TryGetValue(at, out var y) || !x.AsSpan().SequenceEqual(y);

    private static (XenMachine Machine, IRunInputs Inputs) Build(TraceReader r, List<TraceEvent> events, Func<IRunInputs, IRunInputs>? wrap)
    {
        var queue = new InputQueue(events.OfType<InputEvent>());
        var options = RunOptions.FromHeader(r.Header);
        XenMachine? m = null;
        void Diverged(string what) { } // the re-execution follows the recording's inputs; it does not verify it
        m = new XenMachine(r.GuestImage.ToArray(), options.Machine(options.Clock == ClockKind.Host ? new ReplayingClock(queue, Diverged) : null));
        var machine = m;
        var inputs = new ReplayInputs(queue, new Checkpoints(0, _ => { }), ulong.MaxValue, options.ChaosSeed != null, Diverged, () => machine.Icount, false);
        return (m, wrap?.Invoke(inputs) ?? inputs);
    }

    /// <summary>Replays a run from its start and takes the state hash at each probe count.</summary>
    private static Dictionary<ulong, byte[]> Probe(TraceReader r, List<TraceEvent> events, List<ulong> probes, Func<IRunInputs, IRunInputs>? wrap, ref ulong executed)
    {
        var hashes = new Dictionary<ulong, byte[]>();
        var (m, inner) = Build(r, events, wrap);
        var inputs = new ProbeInputs(inner, probes, machine => hashes[machine.Icount] = machine.StateHash());
        m.Run(probes[^1] + 1 - m.Icount, inputs);
        executed += m.Icount;
        return hashes;
    }

    private static (MachineView View, (CpuSnapshot Cpu, byte[] Ram) State, Func<ulong, uint> VirtualOf) Inspect(TraceReader r, List<TraceEvent> events, ulong lo, Func<IRunInputs, IRunInputs>? wrap, ref ulong executed)
    {
        var (m, inner) = Build(r, events, wrap);
        var symbols = GuestSymbols.FromImage(r.GuestImage.Span);
        MachineView? view = null;
        (CpuSnapshot Cpu, byte[] Ram)? after = null;
        var inputs = new ProbeInputs(inner, [lo, lo + 1], machine =>
        {
            if (machine.Icount == lo)
                view = new MachineView(machine.Cpu.Eip, DivergenceReport.Disassemble(machine.Cpu, machine.Cpu.Eip, 1, symbols).FirstOrDefault()?.TrimStart('=', '>', ' ') ?? "");
            else after = (machine.Cpu.Snapshot(), machine.Domain.Memory.SnapshotBytes());
        });
        m.Run(lo + 2 - m.Icount, inputs);
        executed += m.Icount;
        if (view == null || after == null) throw new PinpointException($"the re-execution of {r.Header.GuestImageName} ended at instruction {m.Icount}, before {lo + 1}");
        return (view, after.Value, KernelVirtual(m));
    }

    private static List<RegisterDifference> Registers(CpuSnapshot a, CpuSnapshot b)
    {
        var list = new List<RegisterDifference>();
        string[] gpr = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"];
        for (int i = 0; i < 8; i++) Add(gpr[i], a.Gpr[i], b.Gpr[i]);
        Add("eip", a.Eip, b.Eip);
        Add("eflags", a.Eflags, b.Eflags);
        for (int i = 0; i < Seg.Count; i++) Add(Seg.Names[i], a.Segs[i].Selector, b.Segs[i].Selector);
        Add("cr0", a.Cr0, b.Cr0); Add("cr2", a.Cr2, b.Cr2); Add("cr3", a.Cr3, b.Cr3); Add("cr4", a.Cr4, b.Cr4);
        return list;

        void Add(string name, uint x, uint y)
        {
            if (x != y) list.Add(new RegisterDifference(name, x, y));
        }
    }

    private const int MaxRanges = 16, MergeGap = 16;

    /// <summary>Machine address → the kernel's direct-map virtual address (VIRT_BASE + pfn, docs/xen-abi.md §7), or 0 for frames the guest does not own.</summary>
    private static Func<ulong, uint> KernelVirtual(XenMachine m)
    {
        var pfnOf = new Dictionary<uint, uint>();
        for (int pfn = 0; pfn < m.Domain.P2m.Count; pfn++) pfnOf[m.Domain.P2m[pfn]] = (uint)pfn;
        uint virtBase = m.Domain.Guest.VirtBase, limit = m.Domain.Layout.HypervisorVirtStart;
        return pa => pfnOf.TryGetValue((uint)(pa >> 12), out uint pfn) && (ulong)virtBase + ((ulong)pfn << 12) < limit
            ? virtBase + (pfn << 12) + (uint)(pa & 0xFFF) : 0;
    }

    private static List<MemoryDifference> Memory(byte[] ra, byte[] rb, Func<ulong, uint> virtualOf, GuestSymbols symbols)
    {
        var list = new List<MemoryDifference>();
        int n = Math.Min(ra.Length, rb.Length);
        int i = 0;
        while (i < n && list.Count < MaxRanges)
        {
            int start = ra.AsSpan(i, n - i).CommonPrefixLength(rb.AsSpan(i, n - i)) + i;
            if (start >= n) break;
            int end = start + 1;
            while (end < n)
            {
                if (ra[end] != rb[end]) { end++; continue; }
                int same = ra.AsSpan(end, Math.Min(MergeGap, n - end)).CommonPrefixLength(rb.AsSpan(end, Math.Min(MergeGap, n - end)));
                if (same >= MergeGap || end + same >= n) break;
                end += same;
            }
            int len = Math.Min(end - start, 64);
            list.Add(new MemoryDifference((ulong)start, virtualOf((ulong)start), "", ra.AsSpan(start, len).ToArray(), rb.AsSpan(start, len).ToArray()));
            i = end;
        }
        return list.Select(d => d with { Symbol = d.Virtual != 0 ? symbols.Name(d.Virtual) : "" }).ToList();
    }

    /// <summary>Polls at each probe count (pure polls: nothing injected), then at the last one ends the run.</summary>
    private sealed class ProbeInputs(IRunInputs inner, List<ulong> probes, Action<XenMachine> atProbe) : IRunInputs
    {
        private int _next;
        private ulong _done = ulong.MaxValue;

        public ulong NextPoll(ulong icount)
        {
            ulong p = _next < probes.Count ? probes[_next] : ulong.MaxValue;
            return Math.Min(inner.NextPoll(icount), Math.Max(p, icount));
        }

        public bool Poll(XenMachine machine, bool blocked)
        {
            while (_next < probes.Count && probes[_next] < machine.Icount) _next++; // passed while idle: no state there to see
            if (_next < probes.Count && probes[_next] == machine.Icount && _done != machine.Icount)
            {
                _done = machine.Icount;
                atProbe(machine);
                _next++;
            }
            return inner.Poll(machine, blocked);
        }

        public bool WaitForInput(XenMachine machine) => inner.WaitForInput(machine);
        public ulong TimerDelay(ulong icount) => inner.TimerDelay(icount);
        public bool StopRequested => _next >= probes.Count || inner.StopRequested;
    }
}
