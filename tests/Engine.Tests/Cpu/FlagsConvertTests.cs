using Replayvisor.Engine.Cpu;
using static Iced.Intel.AssemblerRegisters;
using static Replayvisor.Engine.Tests.Cpu.CpuTest;

namespace Replayvisor.Engine.Tests.Cpu;

public class FlagsConvertTests
{
    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void LahfSahf(CpuTier bc)
    {
        var m = Exec(bc, a => { a.lahf(); a.mov(__byte_ptr[0x2000], ah); a.mov(ah, 0xFF); a.sahf(); },
            c => c.Eflags = SF | CF | OF | 2);
        Assert.Equal((byte)(SF | CF | 2), m.Memory.Read8(0x2000));
        Flags(m.Cpu, Arith, Arith); // sahf sets SF ZF AF PF CF; OF unchanged (was set)
    }

    [Fact]
    public void SahfLeavesOf()
    {
        var m = Exec(CpuTier.BlockCache, a => { a.mov(ah, 0); a.sahf(); }, c => c.Eflags = Arith | 2);
        Flags(m.Cpu, Arith, OF);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void SignExtensions(CpuTier bc)
    {
        var m = Exec(bc, a =>
        {
            a.mov(eax, 0x1234_5680); a.cbw(); a.mov(__dword_ptr[0x2000], eax);
            a.mov(eax, 0x1234_8000); a.cwde(); a.mov(__dword_ptr[0x2004], eax);
            a.mov(edx, 0x5555_5555); a.mov(eax, 0x8000); a.cwd(); a.mov(__dword_ptr[0x2008], edx);
            a.mov(eax, 0x7FFFFFFF); a.cdq();
        });
        Assert.Equal(0x1234_FF80u, m.Memory.Read32(0x2000));
        Assert.Equal(0xFFFF_8000u, m.Memory.Read32(0x2004));
        Assert.Equal(0x5555_FFFFu, m.Memory.Read32(0x2008));
        Assert.Equal(0u, m.Cpu.Edx);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void Xlat(CpuTier bc)
    {
        var m = Exec(bc, a => { a.mov(ebx, 0x2000); a.mov(eax, 0x1234_56FF); a.xlatb(); },
            c => c.Memory.Write8(0x20FF, 0x42));
        Assert.Equal(0x1234_5642u, m.Cpu.Eax);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void BoundWithinRange(CpuTier bc)
    {
        var m = Exec(bc, a => { a.mov(eax, -5); a.bound(eax, __qword_ptr[0x2000]); a.mov(ebx, 1); }, c =>
        {
            c.Memory.Write32(0x2000, unchecked((uint)-5)); c.Memory.Write32(0x2004, 10);
        });
        Halted(m);
        Assert.Equal(1u, m.Cpu.Ebx);
    }

    [Theory]
    [InlineData(-6)]
    [InlineData(11)]
    public void BoundOutOfRangeRaisesBr(int idx)
    {
        var m = Exec(CpuTier.BlockCache, a => { a.mov(eax, idx); a.bound(eax, __qword_ptr[0x2000]); }, c =>
        {
            c.Memory.Write32(0x2000, unchecked((uint)-5)); c.Memory.Write32(0x2004, 10);
        });
        Faulted(m, Vectors.BR, TestMachine.CodeBase + 5);
        Assert.Equal(1ul, m.Cpu.Icount);
    }

    [Fact]
    public void Bound16()
    {
        var m = Exec(CpuTier.BlockCache, a => { a.mov(ax, 0x8000); a.bound(ax, __dword_ptr[0x2000]); }, c => c.Memory.Write32(0x2000, 0x7FFF_8001));
        Faulted(m, Vectors.BR, TestMachine.CodeBase + 4);
    }

    [Fact]
    public void PauseAndMultiByteNopTouchNothing()
    {
        var m = Exec(CpuTier.BlockCache, a => { a.pause(); a.nop(__dword_ptr[eax + 0x1000]); }, NullDs);
        Halted(m);
        Assert.Equal(3ul, m.Cpu.Icount);
    }
}
