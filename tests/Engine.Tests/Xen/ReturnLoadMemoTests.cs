using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Xen;
using Replayvisor.Engine.Tests.Xen.State;
using static Replayvisor.Engine.Tests.Xen.XenTestGuest;

namespace Replayvisor.Engine.Tests.Xen;

/// <summary>
/// The return path's six loads are answered at once when they repeat the last return's selectors
/// (ReturnLoadMemo). Two identical machines take the same random changes to their GDT entries, GDT
/// frame and limit, GDTR and TLB, and the same random returns: one with the memo and cache, one loading
/// every selector in full. Every return must give the same loads (or the same first fault), and the
/// machines must end in the same state.
/// </summary>
public class ReturnLoadMemoTests
{
    internal const int FirstEntry = 20, Entries = 4;

    /// <summary>Descriptors an entry is rewritten with: ring-1 and ring-3 data and code, conforming code, not present, accessed or not.</summary>
    internal static ulong Descriptor(Random r)
    {
        uint dpl = (uint)r.Next(4) switch { 0 or 1 => 1u, 2 => 3u, _ => 0u };
        uint type = (uint)r.Next(5) switch
        {
            0 or 1 => 0x2,      // read/write data
            2 => 0xA,           // execute/read code
            3 => 0xE,           // conforming execute/read code
            _ => 0x0,           // read-only data (not a stack)
        };
        if (r.Next(2) == 0) type |= 1; // accessed already
        uint present = r.Next(8) == 0 ? 0u : 0x80u;
        uint @base = (uint)r.Next(16) << 12;
        uint access = present | (dpl << 5) | 0x10 | type;
        uint lo = 0xFFFF | (@base << 16);
        uint hi = ((@base >> 16) & 0xFF) | (access << 8) | 0xCF0000 | (@base & 0xFF000000);
        return lo | ((ulong)hi << 32);
    }

    /// <summary>A selector for load <paramref name="i"/> (DS, ES, FS, GS, CS, SS): one of the test's entries half the time, else Xen's flat ring-1 ones (or null data).</summary>
    internal static ushort Selector(Random r, int i)
    {
        if (r.Next(2) == 0) return (ushort)((FirstEntry + r.Next(Entries)) * 8 | (r.Next(3) == 0 ? 3 : 1));
        return i switch
        {
            4 => XenLayout.FlatKernelCs,
            5 => XenLayout.FlatKernelSs,
            _ => r.Next(3) == 0 ? (ushort)0 : XenLayout.FlatKernelDs,
        };
    }

    internal static XenMachine NewMachine(bool caching, uint[] frames)
    {
        var m = new XenTestGuest().Main(a => a.nop()).Machine(true, new XenMachineOptions { MemoryMiB = 8, SelectorLoadCache = caching });
        for (int i = 0; i < frames.Length; i++) frames[i] = TickerGuest.FreeMfn(m, i + 1);
        return m;
    }

    internal static void SetGdt(XenMachine m, uint frame, uint entries)
    {
        uint list = Scratch + 0x100;
        Write32(m, list, frame);
        Assert.Equal(0, m.Hypervisor.Call(2, new HypercallArgs(list, entries, 0, 0, 0, 0)));
    }

    /// <summary>Sometimes the same random change to both machines: a GDT entry's bytes, set_gdt, the GDTR limit alone, a TLB flush.</summary>
    internal static void Mutate(Random r, XenMachine on, XenMachine off, uint[] framesOn)
    {
        int change = r.Next(40);
        if (change < 3)
        {
            uint frame = framesOn[r.Next(2)];
            ulong at = ((ulong)frame << 12) + (ulong)(FirstEntry + r.Next(Entries)) * 8;
            ulong desc = Descriptor(r);
            on.Cpu.Memory.Write64(at, desc);
            off.Cpu.Memory.Write64(at, desc);
        }
        else if (change == 3)
        {
            uint frame = framesOn[r.Next(2)], entries = r.Next(2) == 0 ? 512u : (uint)(FirstEntry + r.Next(Entries + 1));
            SetGdt(on, frame, entries);
            SetGdt(off, frame, entries);
        }
        else if (change == 4)
        {
            // The table register alone, with no TLB flush (as a restored context could leave it).
            uint limit = r.Next(2) == 0 ? 0xFFFFu : (uint)(FirstEntry + r.Next(Entries + 1)) * 8 - 1;
            on.Cpu.GdtrLimit = off.Cpu.GdtrLimit = limit;
        }
        else if (change == 5)
        {
            on.Cpu.FlushTlb();
            off.Cpu.FlushTlb();
        }
    }

    /// <summary>Two identical machines, one loading through the caches and one in full, with the test's GDT entries cleared and the first frame as GDT.</summary>
    internal static (XenMachine On, XenMachine Off, uint[] Frames) Pair()
    {
        uint[] framesOn = new uint[2], framesOff = new uint[2];
        var on = NewMachine(true, framesOn);
        var off = NewMachine(false, framesOff);
        Assert.Equal(framesOff, framesOn);
        foreach (var m in new[] { on, off })
        {
            foreach (uint f in framesOn)
                for (int e = 0; e < Entries; e++) m.Cpu.Memory.Write64(((ulong)f << 12) + (ulong)(FirstEntry + e) * 8, 0);
            SetGdt(m, framesOn[0], 512);
        }
        return (on, off, framesOn);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void ReturnsAnsweredAtOnceEqualTheFullLoads(int seed)
    {
        var (on, off, framesOn) = Pair();
        var r = new Random(seed);
        ushort[] selectors = new ushort[6];
        var scratchOn = new SegmentCache[6];
        var scratchOff = new SegmentCache[6];
        int answered = 0, loaded = 0;
        for (int step = 0; step < 20_000; step++)
        {
            Mutate(r, on, off, framesOn);
            // Mostly the same selectors as the last return (what the memo is for), sometimes new ones.
            if (step == 0 || r.Next(4) == 0)
                for (int i = 0; i < 6; i++) selectors[i] = Selector(r, i);
            int failedOn = on.Hypervisor.SegmentLoader.TryLoadReturn(selectors, scratchOn, out var loadsOn, out var faultOn);
            int failedOff = off.Hypervisor.SegmentLoader.TryLoadReturn(selectors, scratchOff, out var loadsOff, out var faultOff);
            Assert.Equal(failedOff, failedOn);
            Assert.Equal(faultOff.Vector, faultOn.Vector);
            Assert.Equal(faultOff.ErrorCode, faultOn.ErrorCode);
            if (failedOn < 0)
            {
                loaded++;
                for (int i = 0; i < 6; i++) Assert.Equal(loadsOff[i], loadsOn[i]);
            }
        }
        answered = (int)((CpuSegmentLoader)on.Hypervisor.SegmentLoader).ReturnHits;
        Assert.True(loaded > 500, $"only {loaded} returns loaded");
        Assert.True(answered > loaded / 4, $"the memo answered {answered} of {loaded}");
        Assert.Equal(0, ((CpuSegmentLoader)off.Hypervisor.SegmentLoader).ReturnHits);
        Assert.Equal(off.StateHash(), on.StateHash());
    }
}
