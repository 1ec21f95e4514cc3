using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Xen;
using Replayvisor.Engine.Tests.Xen.State;
using static Iced.Intel.AssemblerRegisters;
using static Replayvisor.Engine.Tests.Xen.XenTestGuest;

namespace Replayvisor.Engine.Tests.Xen;

/// <summary>
/// Xen's return path reloads DS, ES, FS, GS, CS and SS on every exit; <see cref="CpuSegmentLoader"/>
/// remembers its loads (SelectorLoadCache). A guest that rewrites its GDT entries (update_descriptor,
/// set_gdt to another frame, a descriptor made not present) must see each rewrite at its next
/// return, and every run must be the same with the cache as without it.
/// </summary>
public class SelectorLoadCacheTests
{
    private const uint Failsafe = Entry + 0x900;
    private const ushort Es20 = 20 * 8 + 1;
    private const uint B1 = Scratch + 0x800, B2 = Scratch + 0xC00, B3 = Scratch + 0xE00;
    // Data page slots the test fills once the machine (and so the GDT frames' addresses) exists.
    private const uint SetGdtList = DataPage + 0x10, NewGdtList = DataPage + 0x14;
    private const uint Update1 = DataPage + 0x20, Update2 = DataPage + 0x30; // maddr lo, hi, desc lo, hi

    /// <summary>A present, byte-granular, 4 KiB, DPL-1 read/write data segment at <paramref name="base"/>, accessed bit clear (the first load sets it).</summary>
    private static ulong DataDescriptor(uint @base, bool present = true)
    {
        uint access = (present ? 0x80u : 0) | 0x20 | 0x10 | 0x2;
        uint lo = 0xFFF | (@base << 16);
        uint hi = ((@base >> 16) & 0xFF) | (access << 8) | 0x400000 | (@base & 0xFF000000);
        return lo | ((ulong)hi << 32);
    }

    private static void ReadEsTo(Iced.Intel.Assembler a, uint slot)
    {
        a.mov(eax, __dword_ptr.es[0]);
        a.mov(__dword_ptr[slot], eax);
    }

    private static void XenVersion(Iced.Intel.Assembler a)
    {
        a.mov(ebx, 0); a.mov(ecx, 0);
        Hcall(a, 17);
    }

    private static void UpdateDescriptor(Iced.Intel.Assembler a, uint args)
    {
        a.mov(ebx, __dword_ptr[args]); a.mov(ecx, __dword_ptr[args + 4]);
        a.mov(edx, __dword_ptr[args + 8]); a.mov(esi, __dword_ptr[args + 12]);
        Hcall(a, 10);
    }

    private static (XenMachine Machine, EventLog Log) RunGuest(bool cache)
    {
        var g = new XenTestGuest();
        g.Main(a =>
        {
            SetCallbacks(a, Failsafe, Failsafe);
            a.mov(ebx, SetGdtList); a.mov(ecx, 512); Hcall(a, 2);           // set_gdt(first frame)
            a.mov(__dword_ptr[Scratch + 0x40], eax);
            a.mov(ax, Es20); a.mov(es, ax);
            ReadEsTo(a, Scratch);                                            // through B1
            XenVersion(a);                                                   // the return loads ES in full
            XenVersion(a);                                                   // and again (the cache holds it)
            ReadEsTo(a, Scratch + 4);
            UpdateDescriptor(a, Update1);                                    // entry 20 now at B2: this very return reloads it
            a.mov(__dword_ptr[Scratch + 0x44], eax);
            ReadEsTo(a, Scratch + 8);
            XenVersion(a);
            ReadEsTo(a, Scratch + 12);
            a.mov(ebx, NewGdtList); a.mov(ecx, 512); Hcall(a, 2);           // set_gdt(second frame): entry 20 at B3
            a.mov(__dword_ptr[Scratch + 0x48], eax);
            ReadEsTo(a, Scratch + 16);
            XenVersion(a);
            ReadEsTo(a, Scratch + 20);
            UpdateDescriptor(a, Update2);                                    // entry 20 not present: this return cannot load ES
            a.mov(__dword_ptr[Scratch + 24], 0xBAD);
            Shutdown(a, 0);
        });
        g.Code(Failsafe, a => Shutdown(a, 1)); // uses no data segment
        var m = g.Machine(true, new XenMachineOptions { MemoryMiB = 8, SelectorLoadCache = cache });
        var log = new EventLog();
        m.Hypervisor.Observer = log;
        uint first = TickerGuest.FreeMfn(m, 1), second = TickerGuest.FreeMfn(m, 2);
        Write32(m, SetGdtList, first);
        Write32(m, NewGdtList, second);
        m.Cpu.Memory.Write64(((ulong)first << 12) + 20 * 8, DataDescriptor(B1));
        m.Cpu.Memory.Write64(((ulong)second << 12) + 20 * 8, DataDescriptor(B3));
        WriteUpdate(m, Update1, first, DataDescriptor(B2));
        WriteUpdate(m, Update2, second, DataDescriptor(B3, present: false));
        Write32(m, B1, 0x11111111);
        Write32(m, B2, 0x22222222);
        Write32(m, B3, 0x33333333);
        Assert.Equal(MachineExitKind.Rebooted, Run(m).Kind);
        return (m, log);
    }

    private static void WriteUpdate(XenMachine m, uint at, uint frame, ulong desc)
    {
        Write32(m, at, (frame << 12) + 20 * 8);
        Write32(m, at + 4, 0);
        Write32(m, at + 8, (uint)desc);
        Write32(m, at + 12, (uint)(desc >> 32));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void EveryRewriteOfAGdtEntryIsSeenAtTheNextReturn(bool cache)
    {
        var (m, _) = RunGuest(cache);
        Assert.Equal(0u, Read32(m, Scratch + 0x40));           // set_gdt
        Assert.Equal(0u, Read32(m, Scratch + 0x44));           // update_descriptor
        Assert.Equal(0u, Read32(m, Scratch + 0x48));           // the second set_gdt
        Assert.Equal(0x11111111u, Read32(m, Scratch));
        Assert.Equal(0x11111111u, Read32(m, Scratch + 4));
        Assert.Equal(0x22222222u, Read32(m, Scratch + 8));     // reloaded on the update's own return
        Assert.Equal(0x22222222u, Read32(m, Scratch + 12));
        Assert.Equal(0x33333333u, Read32(m, Scratch + 16));    // the new GDT's entry
        Assert.Equal(0x33333333u, Read32(m, Scratch + 20));
        Assert.Equal(0u, Read32(m, Scratch + 24));             // never ran: the failsafe callback did
        Assert.Equal(1, m.Hypervisor.Stats.Failsafes);
        Assert.False(m.Cpu.Segs[Seg.ES].Usable);
    }

    [Fact]
    public void TheCacheChangesNothing()
    {
        var (on, onLog) = RunGuest(cache: true);
        var (off, offLog) = RunGuest(cache: false);
        Assert.Equal(offLog.Lines, onLog.Lines);
        Assert.Contains(onLog.Lines, l => l.Contains("failsafe", StringComparison.Ordinal) && l.Contains("loading es = 00a1 faulted (vector 11", StringComparison.Ordinal));
        var loader = (CpuSegmentLoader)on.Hypervisor.SegmentLoader;
        Assert.True(loader.Hits + 6 * loader.ReturnHits > 20); // most of the return path's loads
        Assert.Equal(0, ((CpuSegmentLoader)off.Hypervisor.SegmentLoader).Hits);
        Assert.Equal(off.Icount, on.Icount);
        Assert.Equal(off.StateHash(), on.StateHash());
    }

    [Fact]
    public void ADescriptorChangedInRamByAnyWriterMissesTheCache()
    {
        // Not through update_descriptor and with no TLB flush: only the descriptor's bytes differ.
        var m = new XenTestGuest().Main(a => a.nop()).Machine(true, new XenMachineOptions { MemoryMiB = 8 });
        var hv = m.Hypervisor;
        uint frame = TickerGuest.FreeMfn(m, 1);
        uint list = Scratch + 0x100;
        Write32(m, list, frame);
        m.Cpu.Memory.Write64(((ulong)frame << 12) + 20 * 8, DataDescriptor(B1));
        Assert.Equal(0, hv.Call(2, new HypercallArgs(list, 512, 0, 0, 0, 0)));
        Assert.True(hv.SegmentLoader.TryLoad(Seg.ES, Es20, 0, out var first, out _));
        Assert.True(hv.SegmentLoader.TryLoad(Seg.ES, Es20, 0, out var again, out _));
        Assert.Equal(B1, first.Base);
        Assert.Equal(first, again);
        ulong rewritten = DataDescriptor(B2) | (1ul << 40); // accessed: the load writes nothing back
        m.Cpu.Memory.Write64(((ulong)frame << 12) + 20 * 8, rewritten);
        Assert.True(hv.SegmentLoader.TryLoad(Seg.ES, Es20, 0, out var after, out _));
        Assert.Equal(B2, after.Base);
        m.Cpu.Memory.Write64(((ulong)frame << 12) + 20 * 8, DataDescriptor(B2, present: false));
        Assert.False(hv.SegmentLoader.TryLoad(Seg.ES, Es20, 0, out _, out var fault));
        Assert.Equal(Vectors.NP, fault.Vector);
    }
}
