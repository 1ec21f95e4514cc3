using Replayvisor.Engine.Cpu;
using static Iced.Intel.AssemblerRegisters;
using static Replayvisor.Engine.Tests.Cpu.CpuTest;

namespace Replayvisor.Engine.Tests.Cpu;

public class BcdTests
{
    private static TestMachine Code32(Action<Iced.Intel.Assembler> code, uint eflags = 2)
    {
        return Exec(CpuTier.BlockCache, code, c => c.Eflags = eflags);
    }

    [Theory]
    [InlineData(0x79u, 0x35u, 0x14u, CF | AF | PF)]      // 79 + 35 = 114
    [InlineData(0x12u, 0x34u, 0x46u, 0u)]
    [InlineData(0x99u, 0x01u, 0x00u, CF | AF | ZF | PF)]
    [InlineData(0x50u, 0x50u, 0x00u, CF | ZF | PF)]
    public void DaaAfterAdd(uint x, uint y, uint expect, uint flags)
    {
        var m = Code32(a => { a.mov(al, (byte)x); a.add(al, (byte)y); a.daa(); });
        Assert.Equal(expect, m.Cpu.Eax & 0xFF);
        Flags(m.Cpu, CF | AF | ZF | PF | SF, flags);
    }

    [Theory]
    [InlineData(0x35u, 0x47u, 0x88u, CF | AF | SF | PF)]  // 35 - 47 = -12 -> 88 borrow
    [InlineData(0x46u, 0x12u, 0x34u, 0u)]
    [InlineData(0x10u, 0x01u, 0x09u, AF | PF)]
    public void DasAfterSub(uint x, uint y, uint expect, uint flags)
    {
        var m = Code32(a => { a.mov(al, (byte)x); a.sub(al, (byte)y); a.das(); });
        Assert.Equal(expect, m.Cpu.Eax & 0xFF);
        Flags(m.Cpu, CF | AF | ZF | PF | SF, flags);
    }

    [Fact]
    public void DasBorrowFromLowAdjust()
    {
        // AL = 3 with AF set: AL - 6 borrows and hardware keeps that borrow in CF (the differential
        // tests against the host processor showed it; the SDM's pseudo-code would clear it).
        var m = Code32(a => { a.mov(al, 3); a.das(); }, AF | 2);
        Assert.Equal(0xFDu, m.Cpu.Eax & 0xFF);
        Flags(m.Cpu, CF | AF, CF | AF);
    }

    [Fact]
    public void AaaAas()
    {
        var m = Code32(a => { a.mov(ax, 0x0108); a.add(al, 5); a.aaa(); a.mov(__word_ptr[0x2000], ax); a.mov(bx, ax); a.mov(ax, 0x0203); a.sub(al, 5); a.aas(); });
        Assert.Equal(0x0203u, m.Memory.Read16(0x2000));   // 8 + 5 = 13 -> AH+1, AL = 3
        Assert.Equal(0x0108u, m.Cpu.Eax & 0xFFFF);         // 3 - 5 = 0xFE: AX - 6 = 0x02F8, AH - 1 = 0x01F8, AL &= 0x0F
        Flags(m.Cpu, CF | AF, CF | AF);
    }

    [Fact]
    public void AaaNoAdjust()
    {
        var m = Code32(a => { a.mov(ax, 0x0135); a.aaa(); }, CF | AF | 2);
        // AF set forces the adjustment even though the low nibble is 5.
        Assert.Equal(0x020Bu, m.Cpu.Eax & 0xFFFF);
        var m2 = Code32(a => { a.mov(ax, 0x0135); a.aaa(); }, CF | 2);
        Assert.Equal(0x0105u, m2.Cpu.Eax & 0xFFFF);
        Flags(m2.Cpu, CF | AF, 0);
    }

    [Fact]
    public void AamAad()
    {
        var m = Code32(a => { a.mov(al, 79); a.aam(10); a.mov(__word_ptr[0x2000], ax); a.aad(10); a.mov(__word_ptr[0x2002], ax); a.mov(ax, 0x0102); a.aad(16); });
        Assert.Equal(0x0709u, m.Memory.Read16(0x2000));
        Assert.Equal(79u, m.Memory.Read16(0x2002));
        Assert.Equal(0x12u, m.Cpu.Eax & 0xFFFF);
        Flags(m.Cpu, ZF | SF | PF, PF);
    }

    [Fact]
    public void AamZeroRaisesDe()
    {
        var m = Code32(a => { a.mov(ax, 0x1234); a.aam(0); });
        Faulted(m, Vectors.DE, TestMachine.CodeBase + 4);
        Assert.Equal(0x1234u, m.Cpu.Eax & 0xFFFF);
    }
}
