using Replayvisor.Engine.Cpu;
using static Iced.Intel.AssemblerRegisters;
using static Replayvisor.Engine.Tests.Cpu.CpuTest;

namespace Replayvisor.Engine.Tests.Cpu;

public class MulDivTests
{
    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void MulAllSizes(CpuTier bc)
    {
        var m = Exec(bc, a =>
        {
            a.mov(eax, 0xFFFF_FF10); a.mov(bl, 0x10); a.mul(bl);          // AX = 0x10 * 0x10 = 0x100
            a.mov(__dword_ptr[0x2000], eax);
            a.mov(eax, 0xFFFF); a.mov(edx, 0x12345678); a.mov(cx, 0xFFFF); a.mul(cx); // 0xFFFE0001
            a.mov(__dword_ptr[0x2004], eax); a.mov(__dword_ptr[0x2008], edx);
            a.mov(eax, 0xFFFFFFFF); a.mov(ecx, 0xFFFFFFFF); a.mul(ecx);
        });
        Halted(m);
        Assert.Equal(0xFFFF_0100u, m.Memory.Read32(0x2000));
        Assert.Equal(0x0000_0001u, m.Memory.Read32(0x2004));
        Assert.Equal(0x1234_FFFEu, m.Memory.Read32(0x2008));
        Assert.Equal(0x00000001u, m.Cpu.Eax);
        Assert.Equal(0xFFFFFFFEu, m.Cpu.Edx);
        Flags(m.Cpu, CF | OF, CF | OF);
    }

    [Fact]
    public void MulNoHighHalfClearsCfOf()
    {
        var m = Exec(CpuTier.BlockCache, a => { a.mov(eax, 3); a.mov(ecx, 5); a.mul(ecx); }, c => c.Eflags = Arith | 2);
        Assert.Equal(15u, m.Cpu.Eax);
        Assert.Equal(0u, m.Cpu.Edx);
        Flags(m.Cpu, CF | OF, 0);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void ImulOneOperand(CpuTier bc)
    {
        var m = Exec(bc, a =>
        {
            a.mov(al, 0xF0); a.mov(bl, 0x08); a.imul(bl);              // -16 * 8 = -128 = 0xFF80: fits in 8 bits
            a.mov(__word_ptr[0x2000], ax);
            a.pushfd(); a.pop(__dword_ptr[0x2004]);
            a.mov(eax, 0x80000000); a.mov(ecx, 0xFFFFFFFF); a.imul(ecx); // -2^31 * -1 = 2^31 overflows
        });
        Assert.Equal(0xFF80u, m.Memory.Read16(0x2000));
        Assert.Equal(0u, m.Memory.Read32(0x2004) & (CF | OF));
        Assert.Equal(0x80000000u, m.Cpu.Eax);
        Assert.Equal(0u, m.Cpu.Edx);
        Flags(m.Cpu, CF | OF, CF | OF);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void ImulTwoAndThreeOperands(CpuTier bc)
    {
        var m = Exec(bc, a =>
        {
            a.mov(eax, 7); a.mov(ecx, 0xFFFFFFFD); a.imul(eax, ecx);     // -21
            a.mov(__dword_ptr[0x2000], 1000); a.imul(ebx, __dword_ptr[0x2000], -3); // -3000
            a.mov(dx, 0x4000); a.imul(dx, dx, 2);                      // 0x8000 overflows 16-bit signed
        });
        Assert.Equal(unchecked((uint)-21), m.Cpu.Eax);
        Assert.Equal(unchecked((uint)-3000), m.Cpu.Ebx);
        Assert.Equal(0x8000u, m.Cpu.Edx & 0xFFFF);
        Flags(m.Cpu, CF | OF, CF | OF);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void DivAllSizes(CpuTier bc)
    {
        var m = Exec(bc, a =>
        {
            a.mov(ax, 1000); a.mov(bl, 7); a.div(bl);                  // 142 r 6
            a.mov(__word_ptr[0x2000], ax);
            a.mov(dx, 1); a.mov(ax, 5); a.mov(cx, 3); a.div(cx);       // 0x10005 / 3 = 21847 r 0
            a.mov(__word_ptr[0x2002], ax); a.mov(__word_ptr[0x2004], dx);
            a.mov(edx, 2); a.mov(eax, 1); a.mov(ecx, 0x10); a.div(ecx); // 0x200000001 / 16
        });
        Halted(m);
        Assert.Equal((6u << 8) | 142u, m.Memory.Read16(0x2000));
        Assert.Equal(21847u, m.Memory.Read16(0x2002));
        Assert.Equal(0u, m.Memory.Read16(0x2004));
        Assert.Equal(0x20000000u, m.Cpu.Eax);
        Assert.Equal(1u, m.Cpu.Edx);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void IdivSigned(CpuTier bc)
    {
        var m = Exec(bc, a =>
        {
            a.mov(ax, unchecked((short)-7)); a.mov(bl, 2); a.idiv(bl);   // -3 r -1
            a.mov(__word_ptr[0x2000], ax);
            a.mov(eax, unchecked((int)0x80000000)); a.cdq(); a.mov(ecx, 2); a.idiv(ecx);
        });
        Assert.Equal(0xFFFDu, m.Memory.Read16(0x2000));
        Assert.Equal(0xC0000000u, m.Cpu.Eax);
        Assert.Equal(0u, m.Cpu.Edx);
    }

    [Fact]
    public void IdivMinus128Fits()
    {
        var m = Exec(CpuTier.BlockCache, a => { a.mov(ax, unchecked((short)-256)); a.mov(bl, 2); a.idiv(bl); });
        Halted(m);
        Assert.Equal(0x0080u, m.Cpu.Eax & 0xFFFF);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void DivideByZero(CpuTier bc)
    {
        var m = Exec(bc, a => { a.mov(eax, 5); a.xor(ecx, ecx); a.div(ecx); }, c => c.Edx = 9);
        Faulted(m, Vectors.DE, TestMachine.CodeBase + 7);
        Assert.Equal(5u, m.Cpu.Eax);
        Assert.Equal(9u, m.Cpu.Edx);
        Assert.Equal(2ul, m.Cpu.Icount);
    }

    [Fact]
    public void DivQuotientOverflow()
    {
        var m = Exec(CpuTier.BlockCache, a => { a.mov(ax, 0x1000); a.mov(bl, 0x10); a.div(bl); });
        Faulted(m, Vectors.DE, TestMachine.CodeBase + 6);
        Assert.Equal(0x1000u, m.Cpu.Eax & 0xFFFF);
    }

    [Fact]
    public void IdivOverflowCases()
    {
        var m = Exec(CpuTier.BlockCache, a => { a.mov(edx, 0x80000000); a.mov(eax, 0); a.mov(ecx, 0xFFFFFFFF); a.idiv(ecx); });
        Faulted(m, Vectors.DE, TestMachine.CodeBase + 15);
        var m2 = Exec(CpuTier.BlockCache, a => { a.mov(ax, 0x8000); a.mov(bl, 0xFF); a.idiv(bl); }); // -32768 / -1: 32768 > 127
        Faulted(m2, Vectors.DE, TestMachine.CodeBase + 6);
        var m3 = Exec(CpuTier.BlockCache, a => { a.mov(eax, 0); a.cdq(); a.idiv(__dword_ptr[0x2000]); }, NullDs);
        Faulted(m3, Vectors.GP, TestMachine.CodeBase + 6, 0);
    }
}
