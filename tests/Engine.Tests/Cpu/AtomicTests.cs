using Replayvisor.Engine.Cpu;
using static Iced.Intel.AssemblerRegisters;
using static Replayvisor.Engine.Tests.Cpu.CpuTest;

namespace Replayvisor.Engine.Tests.Cpu;

public class AtomicTests
{
    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void CmpxchgEqualAndNotEqual(CpuTier bc)
    {
        var m = Exec(bc, a =>
        {
            a.mov(__dword_ptr[0x2000], 5); a.mov(eax, 5); a.mov(ecx, 9); a.@lock.cmpxchg(__dword_ptr[0x2000], ecx);
            a.pushfd(); a.pop(__dword_ptr[0x2010]);
            a.mov(eax, 1); a.cmpxchg(__dword_ptr[0x2000], ecx);   // not equal: EAX <- 9
            a.mov(bl, 0x7F); a.mov(dl, 0x10); a.mov(al, 0x80); a.cmpxchg(bl, dl); // 8-bit register, not equal
        });
        Halted(m);
        Assert.Equal(9u, m.Memory.Read32(0x2000));
        Assert.True((m.Memory.Read32(0x2010) & ZF) != 0);
        Assert.Equal(0x7Fu, m.Cpu.Eax & 0xFF);
        Assert.Equal(0x7Fu, m.Cpu.Ebx & 0xFF);
        // flags of cmp al(0x80), bl(0x7F): 0x01, OF set, no CF
        Flags(m.Cpu, Arith, OF | AF);
    }

    [Fact]
    public void CmpxchgWritesReadOnlyDestinationEvenWhenNotEqual()
    {
        // A code segment as DS: readable, not writable -> #GP(0) although the comparison fails.
        var m = Exec(CpuTier.BlockCache, a => { a.mov(eax, 1); a.cmpxchg(__dword_ptr[0x2000], ecx); },
            c => { c.Segs[Seg.DS] = SegmentCache.Flat(0, 0x9B); });
        Faulted(m, Vectors.GP, TestMachine.CodeBase + 5);
        Assert.Equal(1u, m.Cpu.Eax);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void Cmpxchg8b(CpuTier bc)
    {
        var m = Exec(bc, a =>
        {
            a.mov(__dword_ptr[0x2000], 0x11111111); a.mov(__dword_ptr[0x2004], 0x22222222);
            a.mov(eax, 0x11111111); a.mov(edx, 0x22222222); a.mov(ebx, 0xAAAAAAAA); a.mov(ecx, 0xBBBBBBBB);
            a.cmpxchg8b(__qword_ptr[0x2000]);
            a.pushfd(); a.pop(__dword_ptr[0x2010]);
            a.cmpxchg8b(__qword_ptr[0x2000]); // EDX:EAX still old value: not equal, load
        });
        Assert.Equal(0xAAAAAAAAu, m.Memory.Read32(0x2000));
        Assert.Equal(0xBBBBBBBBu, m.Memory.Read32(0x2004));
        Assert.True((m.Memory.Read32(0x2010) & ZF) != 0);
        Assert.Equal(0xAAAAAAAAu, m.Cpu.Eax);
        Assert.Equal(0xBBBBBBBBu, m.Cpu.Edx);
        Flags(m.Cpu, ZF, 0);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void Xadd(CpuTier bc)
    {
        var m = Exec(bc, a =>
        {
            a.mov(__dword_ptr[0x2000], 0xFFFFFFFF); a.mov(ecx, 1); a.@lock.xadd(__dword_ptr[0x2000], ecx);
            a.mov(__dword_ptr[0x2010], ecx);
            a.mov(ax, 0x7FFF); a.mov(bx, 1); a.xadd(ax, bx);
        });
        Assert.Equal(0u, m.Memory.Read32(0x2000));
        Assert.Equal(0xFFFFFFFFu, m.Memory.Read32(0x2010));
        Assert.Equal(0x8000u, m.Cpu.Eax & 0xFFFF);
        Assert.Equal(0x7FFFu, m.Cpu.Ebx & 0xFFFF);
        Flags(m.Cpu, CF | OF | SF | ZF, OF | SF);
    }

    [Fact]
    public void XaddSameRegister()
    {
        var m = Exec(CpuTier.BlockCache, a => { a.mov(eax, 3); a.xadd(eax, eax); });
        Assert.Equal(6u, m.Cpu.Eax);
    }
}
