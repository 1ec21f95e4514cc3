using Iced.Intel;
using Replayvisor.Engine.Cpu;
using static Iced.Intel.AssemblerRegisters;

namespace Replayvisor.Engine.Tests.Cpu;

/// <summary>
/// DR7 data breakpoints (SDM vol. 3 §17.2.4-§17.2.5, §17.3.1.2): #DB as a trap after the access,
/// DR6 B0-B3 naming the breakpoints hit, the LEN field masking the address, R/W 01 for writes and
/// 11 for reads or writes; the same on every CPU tier.
/// </summary>
public class DataBreakpointTests
{
    public static IEnumerable<object[]> Tiers() => CpuTiers.All();

    /// <summary>DR0-DR3 and DR7 of the SDM's table 17-1 (vol. 3B, "Breakpoint Examples").</summary>
    private static void SdmTableSetup(X86Cpu c)
    {
        c.Dr[0] = 0xA0001; c.Dr[1] = 0xA0002; c.Dr[2] = 0xB0002; c.Dr[3] = 0xC0000;
        c.Dr[7] = 0x55 | (3u << 16) | (0u << 18) | (1u << 20) | (0u << 22) | (3u << 24) | (1u << 26) | (1u << 28) | (3u << 30);
        c.Dr[6] = 0xFFFF0FF0;
    }

    private static void Access(Assembler a, uint addr, int size, bool write)
    {
        a.mov(ebx, addr);
        switch ((size, write))
        {
            case (1, false): a.mov(al, __byte_ptr[ebx]); break;
            case (2, false): a.mov(ax, __word_ptr[ebx]); break;
            case (4, false): a.mov(eax, __dword_ptr[ebx]); break;
            case (1, true): a.mov(__byte_ptr[ebx], al); break;
            case (2, true): a.mov(__word_ptr[ebx], ax); break;
            default: a.mov(__dword_ptr[ebx], eax); break;
        }
    }

    /// <summary>The SDM's trapping rows (reads for "read or write"), and accesses beside each range that must not trap.</summary>
    [Theory]
    [MemberData(nameof(Tiers))]
    public void TheSdmExampleTableTrapsExactlyWhereItSays(CpuTier tier)
    {
        var cases = new (uint Addr, int Size, bool Write, uint Hits)[]
        {
            (0xA0001, 1, false, 1), (0xA0001, 2, false, 1), (0xA0002, 1, true, 2), (0xA0002, 2, true, 2),
            (0xB0001, 4, false, 4), (0xB0002, 1, false, 4), (0xB0002, 2, false, 4),
            (0xC0000, 4, true, 8), (0xC0001, 2, true, 8), (0xC0003, 1, true, 8),
            (0xA0001, 2, true, 3),                                   // one write, two breakpoints: B0 and B1
            (0xA0000, 1, false, 0), (0xA0002, 1, false, 0), (0xA0003, 4, true, 0), (0xB0000, 2, false, 0),
            (0xB0004, 4, false, 0), (0xC0004, 4, true, 0), (0xC0000, 4, false, 0),   // DR3 is write-only
        };
        foreach (var (addr, size, write, hits) in cases)
        {
            var m = new TestMachine(blockCache: tier).Load(a => Access(a, addr, size, write));
            SdmTableSetup(m.Cpu);
            m.Run();
            string what = $"{(write ? "write" : "read")} {size} at 0x{addr:X}";
            if (hits == 0)
            {
                Assert.True(m.Host.Events.Count == 0, $"{what}: {string.Join(", ", m.Host.Events)}");
                continue;
            }
            var e = Assert.Single(m.Host.Events);
            Assert.True(e.Vector == Vectors.DB && e.Kind == EventKind.Trap, $"{what}: {e}");
            Assert.Equal(hits, m.Cpu.Dr[6] & 0xF);
            Assert.Equal(0xFFFF0FF0u, m.Cpu.Dr[6] & ~0xFu);          // the rest of DR6 untouched
            Assert.Equal(m.CodeEnd - 1, m.Cpu.Eip);                   // after the access: at the final hlt
            Assert.Equal(0, m.Host.Halts);
        }
    }

    [Theory]
    [MemberData(nameof(Tiers))]
    public void TheStoreCompletesBeforeTheTrap(CpuTier tier)
    {
        var m = new TestMachine(blockCache: tier).Load(a => { a.mov(eax, 0x11223344); Access(a, 0xC0000, 4, true); a.mov(ecx, 7); });
        SdmTableSetup(m.Cpu);
        m.Run();
        Assert.Equal(Vectors.DB, Assert.Single(m.Host.Events).Vector);
        Assert.Equal(0x11223344u, m.Memory.Read32(0xC0000));
        Assert.Equal(0u, m.Cpu.Ecx);                                  // the next instruction has not run
    }

    [Theory]
    [MemberData(nameof(Tiers))]
    public void DisabledAndExecuteBreakpointsIgnoreDataAccesses(CpuTier tier)
    {
        foreach (uint d7 in new[] { (3u << 16) | (3u << 18), 1u /* L0, R/W 00: execution */ })
        {
            var m = new TestMachine(blockCache: tier).Load(a => { Access(a, 0x9000, 4, true); Access(a, 0x9000, 4, false); });
            m.Cpu.Dr[0] = 0x9000;
            m.Cpu.Dr[7] = d7;
            m.Run();
            Assert.Empty(m.Host.Events);
            Assert.Equal(1, m.Host.Halts);
        }
    }

    /// <summary>A rep string stops after the iteration that hit: ECX counts the rest, EIP stays on the instruction.</summary>
    [Theory]
    [MemberData(nameof(Tiers))]
    public void ARepStringTrapsAfterTheIterationThatHit(CpuTier tier)
    {
        uint rep = 0;
        var m = new TestMachine(blockCache: tier).Load(a =>
        {
            a.mov(edi, 0xBFFF8); a.mov(ecx, 8); a.mov(eax, 0x5A5A5A5A);
            var l = a.CreateLabel(); a.Label(ref l); a.rep.stosd();
        });
        rep = m.CodeEnd - 1 - 2;                                      // rep stosd is 2 bytes, before the hlt
        SdmTableSetup(m.Cpu);
        m.Run();
        var e = Assert.Single(m.Host.Events);
        Assert.Equal(Vectors.DB, e.Vector);
        Assert.Equal(8u, m.Cpu.Dr[6] & 0xF);
        Assert.Equal(5u, m.Cpu.Ecx);                                  // BFFF8, BFFFC, C0000 written
        Assert.Equal(0xC0004u, m.Cpu.Edi);
        Assert.Equal(rep, m.Cpu.Eip);
        Assert.Equal(0u, m.Memory.Read32(0xC0004));
    }

    /// <summary>Read-modify-write and a page already in the TLB before the breakpoint was set still trap.</summary>
    [Theory]
    [MemberData(nameof(Tiers))]
    public void ArmingFlushesPagesTheTlbAlreadyHeld(CpuTier tier)
    {
        var m = new TestMachine(blockCache: tier).Load(a =>
        {
            var loop = a.CreateLabel();
            a.mov(ecx, 3);
            a.Label(ref loop);
            a.inc(__dword_ptr[0xC0000]);
            a.dec(ecx);
            a.jnz(loop);
        });
        m.Run();                                                      // no breakpoint: three increments, fast paths warm
        Assert.Equal(3u, m.Memory.Read32(0xC0000));
        m.Cpu.Eip = TestMachine.CodeBase;
        SdmTableSetup(m.Cpu);
        m.Run();
        var e = Assert.Single(m.Host.Events);
        Assert.Equal(Vectors.DB, e.Vector);
        Assert.Equal(4u, m.Memory.Read32(0xC0000));                   // the increment completed, then the trap
        Assert.Equal(3u, m.Cpu.Ecx);
    }

    [Theory]
    [MemberData(nameof(Tiers))]
    public void EveryTierEndsInTheSameState(CpuTier tier)
    {
        static (uint, uint, uint, ulong, int) RunOn(CpuTier t)
        {
            var m = new TestMachine(blockCache: t).Load(a =>
            {
                var loop = a.CreateLabel();
                a.mov(ecx, 40); a.mov(esi, 0xC0000 - 64);
                a.Label(ref loop);
                a.add(__dword_ptr[esi], ecx); a.add(esi, 4); a.dec(ecx); a.jnz(loop);
            });
            SdmTableSetup(m.Cpu);
            m.Host.StopOnEvent = false;
            m.Run();
            return (m.Cpu.Ecx, m.Cpu.Esi, m.Cpu.Dr[6], m.Cpu.Icount, m.Host.Events.Count);
        }
        var reference = RunOn(CpuTier.Interpreter);
        Assert.Equal(1, reference.Item5);
        Assert.Equal(reference, RunOn(tier));
    }
}
