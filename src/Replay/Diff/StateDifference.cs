using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.State;

namespace Replayvisor.Replay.Diff;

/// <summary>A register of both runs.</summary>
public sealed record RegisterDifference(string Name, uint A, uint B);

/// <summary>A range of guest memory that differs: its guest virtual address (0 when unmapped in the kernel's direct map), symbol and bytes.</summary>
public sealed record MemoryDifference(ulong Physical, uint Virtual, string Symbol, byte[] A, byte[] B);

/// <summary>What differs between two machine states: registers side by side, memory as ranges named by symbol.</summary>
internal static class StateDifference
{
    private const int MaxRanges = 16, MergeGap = 16, MaxBytes = 64;

    public static List<RegisterDifference> Registers(CpuSnapshot a, CpuSnapshot b)
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

    /// <summary>
    /// The parts of the machine state (the sections XenMachine.StateHash covers) whose canonical
    /// forms differ, so a difference registers and RAM do not show (a timer's deadline, a pending
    /// event) is still named.
    /// </summary>
    public static List<string> Parts(XenMachine a, XenMachine b)
    {
        (string Name, Action<XenMachine, CanonicalWriter> Write)[] parts =
        [
            ("cpu", (m, w) => m.Cpu.WriteState(w)),
            ("memory", (m, w) => m.Domain.Memory.WriteState(w)),
            ("memory manager", (m, w) => m.Mm.WriteState(w)),
            ("xen vcpu (timers, time, callbacks)", (m, w) => { foreach (var v in m.Hypervisor.Vcpus) v.WriteState(w); }),
            ("xen event channels", (m, w) => m.Hypervisor.Events.WriteState(w)),
            ("xen console", (m, w) => m.Hypervisor.Console.WriteState(w)),
        ];
        var list = parts.Where(p => !Hash(a, p.Write).AsSpan().SequenceEqual(Hash(b, p.Write))).Select(p => p.Name).ToList();
        if (list.Count == 0 && !a.StateHash().AsSpan().SequenceEqual(b.StateHash())) list.Add("machine (xen time bookkeeping, PIT, grant frames, shutdown, clock or run loop)");
        return list;

        static byte[] Hash(XenMachine m, Action<XenMachine, CanonicalWriter> write)
        {
            var w = new CanonicalWriter();
            write(m, w);
            return w.Finish();
        }
    }

    /// <summary>Machine address → the kernel's direct-map virtual address (VIRT_BASE + pfn, docs/xen-abi.md §7), or 0 for frames the guest does not own.</summary>
    public static Func<ulong, uint> KernelVirtual(XenMachine m)
    {
        var pfnOf = new Dictionary<uint, uint>();
        for (int pfn = 0; pfn < m.Domain.P2m.Count; pfn++) pfnOf[m.Domain.P2m[pfn]] = (uint)pfn;
        uint virtBase = m.Domain.Guest.VirtBase, limit = m.Domain.Layout.HypervisorVirtStart;
        return pa => pfnOf.TryGetValue((uint)(pa >> 12), out uint pfn) && (ulong)virtBase + ((ulong)pfn << 12) < limit
            ? virtBase + (pfn << 12) + (uint)(pa & 0xFFF) : 0;
    }

    /// <summary>Up to 16 differing ranges (differences closer than 16 bytes merged), at most 64 bytes of each shown.</summary>
    public static List<MemoryDifference> Memory(byte[] ra, byte[] rb, Func<ulong, uint> virtualOf, GuestSymbols symbols)
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
            int len = Math.Min(end - start, MaxBytes);
            uint va = virtualOf((ulong)start);
            list.Add(new MemoryDifference((ulong)start, va, va != 0 ? symbols.Name(va) : "", ra.AsSpan(start, len).ToArray(), rb.AsSpan(start, len).ToArray()));
            i = end;
        }
        return list;
    }
}
