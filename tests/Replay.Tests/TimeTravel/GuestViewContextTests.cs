using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Machine;
using Replayvisor.Replay.Stepping;

namespace Replayvisor.Replay.Tests.TimeTravel;

/// <summary>
/// A <see cref="GuestView"/> of a parked vCPU (docs/gdbserver.md "vCPUs as threads") walks that
/// vCPU's page tables: its context's CR3 and paging mode, not the CPU's.
/// </summary>
public class GuestViewContextTests
{
    [Fact]
    public void AContextsViewTranslatesThroughItsOwnPageTables()
    {
        var m = new XenMachine(Guests.Image("hello", false), new XenMachineOptions { MemoryMiB = 32 });
        var cpu = m.Cpu;
        var ram = cpu.Memory;
        Assert.True(cpu.PagingEnabled && !cpu.Pae);
        // A two-level table of its own in the last two frames (32-bit paging, SDM vol. 3 §4.3):
        // linear 0x00400000 → the frame holding the guest's first kernel page.
        ulong dir = ram.Size - 0x2000, table = ram.Size - 0x1000;
        var live = new GuestView(cpu);
        Assert.True(live.TryTranslate(0xC0100000, out ulong kernel));
        for (uint i = 0; i < 0x2000; i += 4) ram.Write32(dir + i, 0);
        ram.Write32(dir + 1 * 4, (uint)table | 1);
        ram.Write32(table, (uint)(kernel & ~0xFFFul) | 1);

        var own = new GuestView(cpu, cpu.SaveContext() with { Cr3 = (uint)dir });
        Assert.False(live.TryTranslate(0x00400000, out _));
        Assert.True(own.TryTranslate(0x00400000, out ulong pa));
        Assert.Equal(kernel & ~0xFFFul, pa);
        Assert.False(own.TryTranslate(0xC0100000, out _)); // not mapped in its tables
        var a = new byte[64];
        var b = new byte[64];
        Assert.True(live.TryRead(0xC0100000 & ~0xFFFu, a));
        Assert.True(own.TryRead(0x00400000, b));
        Assert.Equal(a, b);

        // Its paging mode too: with CR0.PG clear a linear address is physical.
        var flat = new GuestView(cpu, cpu.SaveContext() with { Cr0 = cpu.Cr0 & ~Cr0Bits.PG });
        Assert.True(flat.TryTranslate((uint)kernel, out ulong same));
        Assert.Equal(kernel, same);
        // And its program counter.
        Assert.Equal(0x1234u, new GuestView(cpu, cpu.SaveContext() with { Eip = 0x1234 }).Pc - cpu.Segs[Seg.CS].Base);
    }
}
