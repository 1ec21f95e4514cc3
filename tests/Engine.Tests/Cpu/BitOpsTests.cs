using Replayvisor.Engine.Cpu;
using static Iced.Intel.AssemblerRegisters;
using static Replayvisor.Engine.Tests.Cpu.CpuTest;

namespace Replayvisor.Engine.Tests.Cpu;

public class BitOpsTests
{
    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void RegisterForms(CpuTier bc)
    {
        var m = Exec(bc, a =>
        {
            a.mov(eax, 0x80000001); a.mov(ecx, 63); a.bt(eax, ecx);      // bit 31 -> CF = 1
            a.bts(eax, 4); a.btr(eax, 0); a.btc(eax, 31);
            a.mov(dx, 0x8000); a.mov(bx, 31); a.btr(dx, bx);              // 16-bit: bit 15
        }, c => c.Eflags = ZF | 2);
        Halted(m);
        Assert.Equal(0x00000010u, m.Cpu.Eax);
        Assert.Equal(0u, m.Cpu.Edx & 0xFFFF);
        Flags(m.Cpu, CF | ZF, CF | ZF);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void MemoryRegisterOffsetAddressesBeyondOperand(CpuTier bc)
    {
        var m = Exec(bc, a =>
        {
            a.mov(ecx, 100); a.bts(__dword_ptr[0x2000], ecx);   // 0x2000 + 12, bit 4
            a.mov(ecx, -1); a.bts(__dword_ptr[0x2010], ecx);    // 0x200C bit 31
            a.mov(cx, -17); a.bts(__word_ptr[0x2020], cx);      // 0x2020 - 4 = 0x201C, bit 15
            a.mov(ecx, 0x23); a.bt(__dword_ptr[0x2030], ecx);
        }, c => c.Memory.Write32(0x2034, 8));
        Halted(m);
        Assert.Equal(0x80000010u, m.Memory.Read32(0x200C));
        Assert.Equal(0x8000u, m.Memory.Read16(0x201C));
        Flags(m.Cpu, CF, CF);
    }

    [Fact]
    public void MemoryImmediateOffsetIsMasked()
    {
        var m = Exec(CpuTier.BlockCache, a => { a.btc(__dword_ptr[0x2000], 33); a.btc(__word_ptr[0x2004], 17); });
        Assert.Equal(2u, m.Memory.Read32(0x2000));
        Assert.Equal(2u, m.Memory.Read16(0x2004));
        Flags(m.Cpu, CF, 0);
    }

    [Fact]
    public void MemoryFaultLeavesCf()
    {
        var m = Exec(CpuTier.BlockCache, a => { a.bts(__dword_ptr[0x2000], 1); }, c => { c.Eflags = CF | 2; NullDs(c); });
        Faulted(m, Vectors.GP, TestMachine.CodeBase);
        Flags(m.Cpu, CF, CF);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void BsfBsr(CpuTier bc)
    {
        var m = Exec(bc, a =>
        {
            a.mov(eax, 0x00F0_0100); a.bsf(ebx, eax); a.bsr(ecx, eax);
            a.mov(dx, 0x8000); a.bsr(si, dx);
            a.mov(edi, 0x1234); a.xor(eax, eax); a.bsf(edi, eax);     // source 0: ZF = 1, destination unchanged
        });
        Assert.Equal(8u, m.Cpu.Ebx);
        Assert.Equal(23u, m.Cpu.Ecx);
        Assert.Equal(15u, m.Cpu.Esi & 0xFFFF);
        Assert.Equal(0x1234u, m.Cpu.Edi);
        Flags(m.Cpu, ZF, ZF);
    }

    [Fact]
    public void BsfNonZeroClearsZf()
    {
        var m = Exec(CpuTier.BlockCache, a => { a.mov(__dword_ptr[0x2000], 0x80000000); a.bsf(eax, __dword_ptr[0x2000]); }, c => c.Eflags = ZF | 2);
        Assert.Equal(31u, m.Cpu.Eax);
        Flags(m.Cpu, ZF, 0);
    }

    [Fact]
    public void Bswap()
    {
        var m = Exec(CpuTier.BlockCache, a => { a.mov(eax, 0x11223344); a.bswap(eax); a.mov(ebx, 0xAABBCCDD); a.db(0x66, 0x0F, 0xCB); });
        Assert.Equal(0x44332211u, m.Cpu.Eax);
        Assert.Equal(0xAABB0000u, m.Cpu.Ebx);
    }
}
