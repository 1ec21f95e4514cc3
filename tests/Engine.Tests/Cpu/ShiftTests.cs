using Replayvisor.Engine.Cpu;
using static Iced.Intel.AssemblerRegisters;
using static Replayvisor.Engine.Tests.Cpu.CpuTest;

namespace Replayvisor.Engine.Tests.Cpu;

public class ShiftTests
{
    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void ShlByOne8(CpuTier bc)
    {
        var m = Exec(bc, a => { a.mov(al, 0x81); a.shl(al, 1); });
        Halted(m);
        Assert.Equal(0x02u, m.Cpu.Eax & 0xFF);
        Flags(m.Cpu, CF | OF | ZF | SF | PF | AF, CF | OF);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void ZeroCountChangesNoFlags(CpuTier bc)
    {
        var m = Exec(bc, a => { a.mov(eax, 0x80000000); a.mov(ecx, 0x20); a.shl(eax, cl); a.rcl(eax, cl); a.sar(eax, cl); a.shld(eax, edx, cl); },
            c => c.Eflags = Arith | 2);
        Halted(m);
        Assert.Equal(0x80000000u, m.Cpu.Eax);
        Flags(m.Cpu, Arith, Arith);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void Shl32Carry(CpuTier bc)
    {
        var m = Exec(bc, a => { a.mov(eax, 0xC0000001); a.shl(eax, 2); });
        Assert.Equal(0x00000004u, m.Cpu.Eax);
        Flags(m.Cpu, CF | ZF | SF | PF, CF);
    }

    [Fact]
    public void Shl8CountAboveWidth()
    {
        var m = Exec(CpuTier.BlockCache, a => { a.mov(al, 0xFF); a.mov(cl, 9); a.shl(al, cl); });
        Assert.Equal(0u, m.Cpu.Eax & 0xFF);
        Flags(m.Cpu, CF | ZF | SF | PF, ZF | PF);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void ShrByOne16(CpuTier bc)
    {
        var m = Exec(bc, a => { a.mov(ax, 0x8001); a.shr(ax, 1); });
        Assert.Equal(0x4000u, m.Cpu.Eax & 0xFFFF);
        Flags(m.Cpu, CF | OF | ZF | SF | PF, CF | OF | PF);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void Sar(CpuTier bc)
    {
        var m = Exec(bc, a => { a.mov(eax, 0x80000000); a.sar(eax, 31); a.mov(bl, 0x80); a.mov(cl, 9); a.sar(bl, cl); });
        Assert.Equal(0xFFFFFFFFu, m.Cpu.Eax);
        Assert.Equal(0xFFu, m.Cpu.Ebx & 0xFF);
        Flags(m.Cpu, CF | OF | ZF | SF | PF, CF | SF | PF);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void SarByOneClearsOf(CpuTier bc)
    {
        var m = Exec(bc, a => { a.mov(ax, 0x8000); a.sar(ax, 1); }, c => c.Eflags = OF | 2);
        Assert.Equal(0xC000u, m.Cpu.Eax & 0xFFFF);
        Flags(m.Cpu, CF | OF | SF, SF);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void RolRorOnlyCfOf(CpuTier bc)
    {
        var m = Exec(bc, a => { a.mov(al, 0x81); a.rol(al, 1); a.mov(ebx, 1); a.ror(ebx, 1); },
            c => c.Eflags = ZF | PF | 2);
        Assert.Equal(0x03u, m.Cpu.Eax & 0xFF);
        Assert.Equal(0x80000000u, m.Cpu.Ebx);
        // ror by 1 of 1: CF = MSB = 1, OF = MSB ^ MSB-1 = 1; ZF/PF preserved.
        Flags(m.Cpu, Arith, CF | OF | ZF | PF);
    }

    [Fact]
    public void Rol8ByEightSetsCfFromLsb()
    {
        var m = Exec(CpuTier.BlockCache, a => { a.mov(al, 0x01); a.mov(cl, 8); a.rol(al, cl); });
        Assert.Equal(0x01u, m.Cpu.Eax & 0xFF);
        Flags(m.Cpu, CF, CF);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void RclThroughCarry(CpuTier bc)
    {
        var m = Exec(bc, a => { a.stc(); a.mov(al, 0x80); a.rcl(al, 1); });
        Assert.Equal(0x01u, m.Cpu.Eax & 0xFF);
        Flags(m.Cpu, CF | OF, CF | OF);
    }

    [Fact]
    public void Rcl8ByNineIsIdentity()
    {
        var m = Exec(CpuTier.BlockCache, a => { a.stc(); a.mov(al, 0x55); a.mov(cl, 9); a.rcl(al, cl); });
        Assert.Equal(0x55u, m.Cpu.Eax & 0xFF);
        Flags(m.Cpu, CF, CF);
    }

    [Fact]
    public void Rcr16()
    {
        var m = Exec(CpuTier.BlockCache, a => { a.clc(); a.mov(ax, 1); a.rcr(ax, 1); a.mov(bx, 0x1234); a.mov(cl, 17); a.rcr(bx, cl); a.mov(edx, 2); a.stc(); a.rcr(edx, 2); });
        Assert.Equal(0u, m.Cpu.Eax & 0xFFFF);
        Assert.Equal(0x1234u, m.Cpu.Ebx & 0xFFFF);
        // CF:EDX = 1:00000002 rotated right by 2 through the 33-bit value: EDX = 0x40000000, CF = bit 1 = 1.
        Assert.Equal(0x40000000u, m.Cpu.Edx);
        Flags(m.Cpu, CF, CF);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void Shld32(CpuTier bc)
    {
        var m = Exec(bc, a => { a.mov(eax, 0x12345678); a.mov(edx, 0x9ABCDEF0); a.shld(eax, edx, 4); });
        Assert.Equal(0x23456789u, m.Cpu.Eax);
        Flags(m.Cpu, CF | ZF | SF, CF);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void Shrd32(CpuTier bc)
    {
        var m = Exec(bc, a => { a.mov(eax, 0x12345678); a.mov(edx, 0x9ABCDEF1); a.mov(cl, 4); a.shrd(eax, edx, cl); });
        Assert.Equal(0x11234567u, m.Cpu.Eax);
        Flags(m.Cpu, CF | ZF | SF, CF);
    }

    [Fact]
    public void Shld16CountAbove16IsDeterministic()
    {
        var m = Exec(CpuTier.BlockCache, a => { a.mov(ax, 0x1234); a.mov(dx, 0x5678); a.shld(ax, dx, 20); });
        Assert.Equal(0x6781u, m.Cpu.Eax & 0xFFFF);
        Flags(m.Cpu, CF, CF);
    }

    [Fact]
    public void Shrd16ByOneOverflow()
    {
        var m = Exec(CpuTier.BlockCache, a => { a.mov(ax, 0x0002); a.mov(dx, 0x0001); a.shrd(ax, dx, 1); });
        Assert.Equal(0x8001u, m.Cpu.Eax & 0xFFFF);
        Flags(m.Cpu, CF | OF | SF, OF | SF);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void MemoryForm(CpuTier bc)
    {
        var m = Exec(bc, a => { a.mov(__dword_ptr[0x2000], 0x40000001); a.shl(__dword_ptr[0x2000], 1); a.shrd(__word_ptr[0x2004], bx, 8); },
            c => c.Ebx = 0xAB);
        Assert.Equal(0x80000002u, m.Memory.Read32(0x2000));
        Assert.Equal(0xAB00u, m.Memory.Read16(0x2004));
        Flags(m.Cpu, ZF | PF, PF);
    }

    [Fact]
    public void FaultLeavesFlagsAndMemory()
    {
        var m = Exec(CpuTier.BlockCache, a => { a.mov(eax, 0); a.shl(__dword_ptr[0x2000], 3); }, c => { c.Eflags = CF | 2; NullDs(c); });
        Faulted(m, Vectors.GP, TestMachine.CodeBase + 5, 0);
        Flags(m.Cpu, Arith, CF);
    }
}
