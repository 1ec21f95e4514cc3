using Replayvisor.Engine.Cpu;
using static Iced.Intel.AssemblerRegisters;
using static Replayvisor.Engine.Tests.Cpu.CpuTest;

namespace Replayvisor.Engine.Tests.Cpu;

public class FpuControlTests
{
    /// <summary>TOP = 2, physical R2 holds 1.0 (tag valid), R3 holds +0 (tag zero), the rest empty.</summary>
    private static void LoadState(X86Cpu c)
    {
        var f = c.Fpu;
        f.Fcw = 0x027F; f.Fsw = (2 << 11) | 0x0001; f.Ftw = 0xFF0F; f.Fop = 0x1D9; f.Fip = 0x11223344; f.Fcs = 0x0008;
        f.Fdp = 0x55667788; f.Fds = 0x0010; f.Mxcsr = 0x1FA0;
        f.St[2 * 10 + 7] = 0x80; f.St[2 * 10 + 8] = 0xFF; f.St[2 * 10 + 9] = 0x3F;
        for (int i = 0; i < 128; i++) f.Xmm[i] = (byte)i;
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void InitControlAndStatusWords(CpuTier bc)
    {
        var m = Exec(bc, a =>
        {
            a.fninit(); a.fnstcw(__word_ptr[0x2000]);
            a.mov(__word_ptr[0x2002], 0); a.fldcw(__word_ptr[0x2002]); a.fnstcw(__word_ptr[0x2004]);
            a.fnstsw(ax); a.fnstsw(__word_ptr[0x2006]); a.fnclex(); a.fnstsw(__word_ptr[0x2008]); a.wait();
        }, c => { c.Fpu.Fsw = 0x80A5; c.Eax = 0xFFFF_FFFF; });
        Halted(m);
        Assert.Equal(0x037Fu, m.Memory.Read16(0x2000));
        Assert.Equal(0x0040u, m.Memory.Read16(0x2004));
        Assert.Equal(0xFFFF_0000u, m.Cpu.Eax);
        Assert.Equal(0u, m.Memory.Read16(0x2008));
    }

    [Fact]
    public void FnclexKeepsTopAndConditionCodes()
    {
        var m = Exec(CpuTier.BlockCache, a => { a.fnclex(); }, c => c.Fpu.Fsw = 0xFFFF);
        Assert.Equal(0x7F00, m.Cpu.Fpu.Fsw);
    }

    [Theory]
    [InlineData(Cr0Bits.TS)]
    [InlineData(Cr0Bits.EM)]
    public void NmWhenTsOrEm(uint cr0)
    {
        var m = Exec(CpuTier.BlockCache, a => { a.fninit(); }, c => { c.Cr0 |= cr0; c.Fpu.Fcw = 0x1234; });
        Faulted(m, Vectors.NM, TestMachine.CodeBase);
        Assert.Equal(0x1234, m.Cpu.Fpu.Fcw);
        var m2 = Exec(CpuTier.BlockCache, a => { a.fxsave(__zmmword_ptr[0x2000]); }, c => c.Cr0 |= cr0);
        Faulted(m2, Vectors.NM, TestMachine.CodeBase);
    }

    [Fact]
    public void FwaitNeedsTsAndMp()
    {
        var m = Exec(CpuTier.BlockCache, a => { a.wait(); }, c => c.Cr0 |= Cr0Bits.TS | Cr0Bits.EM);
        Halted(m);
        var m2 = Exec(CpuTier.BlockCache, a => { a.wait(); }, c => c.Cr0 |= Cr0Bits.TS | Cr0Bits.MP);
        Faulted(m2, Vectors.NM, TestMachine.CodeBase);
    }

    [Fact]
    public void OtherX87AndSseStopAsUnsupported()
    {
        var m = new TestMachine().Load(a => { a.fld1(); });
        Assert.Equal(StopReason.Unsupported, m.Run());
        Assert.Contains("fld1", m.Cpu.StopMessage);
        var m2 = new TestMachine().Load(a => { a.addps(xmm0, xmm1); });
        Assert.Equal(StopReason.Unsupported, m2.Run());
        var m3 = new TestMachine().Load(a => { a.emms(); });
        Assert.Equal(StopReason.Unsupported, m3.Run());
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void FxsaveLayout(CpuTier bc)
    {
        var m = Exec(bc, a => { a.fxsave(__zmmword_ptr[0x2000]); }, c =>
        {
            LoadState(c); c.Cr4 |= Cr4Bits.OSFXSR;
            for (uint i = 0; i < 512; i++) c.Memory.Write8(0x2000 + i, 0xEE);
        });
        Halted(m);
        var mem = m.Memory;
        Assert.Equal(0x027Fu, mem.Read16(0x2000));
        Assert.Equal(0x1001u, mem.Read16(0x2002));
        Assert.Equal(0x0Cu, mem.Read8(0x2004));      // abridged: R2, R3 non-empty
        Assert.Equal(0u, mem.Read8(0x2005));
        Assert.Equal(0x1D9u, mem.Read16(0x2006));
        Assert.Equal(0x11223344u, mem.Read32(0x2008));
        Assert.Equal(0x0008u, mem.Read32(0x200C));
        Assert.Equal(0x55667788u, mem.Read32(0x2010));
        Assert.Equal(0x0010u, mem.Read32(0x2014));
        Assert.Equal(0x1FA0u, mem.Read32(0x2018));
        Assert.Equal(0xFFFFu, mem.Read32(0x201C));
        Assert.Equal(0x8000_0000u, mem.Read32(0x2020 + 4));  // ST0 = R2 = 1.0
        Assert.Equal(0x3FFFu, mem.Read16(0x2020 + 8));
        Assert.Equal(0u, mem.Read16(0x2020 + 10));
        Assert.Equal(0x03020100u, mem.Read32(0x20A0));   // XMM0
        Assert.Equal(0x7F7E7D7Cu, mem.Read32(0x20A0 + 124));
        Assert.Equal(0xEEu, mem.Read8(0x2000 + 288));    // beyond the 32-bit image: untouched
        Assert.Equal(0xEEu, mem.Read8(0x2000 + 511));
    }

    [Fact]
    public void FxsaveWithoutOsfxsrSkipsXmm()
    {
        var m = Exec(CpuTier.BlockCache, a => { a.fxsave(__zmmword_ptr[0x2000]); }, c => { LoadState(c); c.Memory.Write32(0x20A0, 0xEEEEEEEE); });
        Assert.Equal(0xEEEEEEEEu, m.Memory.Read32(0x20A0));
        Assert.Equal(0x1FA0u, m.Memory.Read32(0x2018));
    }

    [Theory]
    [InlineData(0x2008u)]
    [InlineData(0x2001u)]
    public void FxsaveFxrstorAlignment(uint addr)
    {
        var m = Exec(CpuTier.BlockCache, a => { a.fxsave(__zmmword_ptr[eax]); }, c => c.Eax = addr);
        Faulted(m, Vectors.GP, TestMachine.CodeBase, 0);
        var m2 = Exec(CpuTier.BlockCache, a => { a.fxrstor(__zmmword_ptr[eax]); }, c => c.Eax = addr);
        Faulted(m2, Vectors.GP, TestMachine.CodeBase, 0);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void FxrstorRoundTrip(CpuTier bc)
    {
        var m = Exec(bc, a => { a.fxsave(__zmmword_ptr[0x2000]); a.fninit(); a.fxrstor(__zmmword_ptr[0x2000]); }, c =>
        {
            LoadState(c); c.Cr4 |= Cr4Bits.OSFXSR;
        });
        Halted(m);
        var f = m.Cpu.Fpu;
        Assert.Equal(0x027F, f.Fcw);
        Assert.Equal(0x1001, f.Fsw);
        Assert.Equal(0xFF0F, f.Ftw);
        Assert.Equal(0x1D9, f.Fop);
        Assert.Equal(0x11223344u, f.Fip);
        Assert.Equal(0x55667788u, f.Fdp);
        Assert.Equal(0x1FA0u, f.Mxcsr);
        Assert.Equal(0x3F, f.St[2 * 10 + 9]);
        Assert.Equal(127, f.Xmm[127]);
    }

    [Fact]
    public void FxrstorReservedMxcsrBitsFault()
    {
        var m = Exec(CpuTier.BlockCache, a => { a.fxrstor(__zmmword_ptr[0x2000]); }, c =>
        {
            c.Cr4 |= Cr4Bits.OSFXSR; c.Memory.Write32(0x2018, 0x10000); c.Memory.Write16(0x2000, 0x0000);
        });
        Faulted(m, Vectors.GP, TestMachine.CodeBase, 0);
        Assert.Equal(0x037F, m.Cpu.Fpu.Fcw);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void FnsaveLayoutThenInit(CpuTier bc)
    {
        var m = Exec(bc, a => { a.fnsave(__[0x2000]); }, LoadState);
        Halted(m);
        var mem = m.Memory;
        Assert.Equal(0xFFFF_027Fu, mem.Read32(0x2000));
        Assert.Equal(0xFFFF_1001u, mem.Read32(0x2004));
        // R2 valid (00), R3 zero (01), others empty (11).
        Assert.Equal(0xFFFF_FF4Fu, mem.Read32(0x2008));
        Assert.Equal(0x11223344u, mem.Read32(0x200C));
        Assert.Equal(0x01D9_0008u, mem.Read32(0x2010));
        Assert.Equal(0x55667788u, mem.Read32(0x2014));
        Assert.Equal(0xFFFF_0010u, mem.Read32(0x2018));
        Assert.Equal(0x8000_0000u, mem.Read32(0x201C + 4)); // ST0
        Assert.Equal(0x3FFFu, mem.Read16(0x201C + 8));
        Assert.Equal(0x037F, m.Cpu.Fpu.Fcw);
        Assert.Equal(0xFFFF, m.Cpu.Fpu.Ftw);
        Assert.Equal(0, m.Cpu.Fpu.Fsw);
    }

    [Fact]
    public void FrstorRoundTripAndFaultKeepsState()
    {
        var m = Exec(CpuTier.BlockCache, a => { a.fnsave(__[0x2000]); a.frstor(__[0x2000]); }, LoadState);
        var f = m.Cpu.Fpu;
        Assert.Equal(0x027F, f.Fcw);
        Assert.Equal(0x1001, f.Fsw);
        Assert.Equal(0xFF0F, f.Ftw); // only empty/non-empty survives a load
        Assert.Equal(0x1D9, f.Fop);
        Assert.Equal(0x3F, f.St[2 * 10 + 9]);

        var m2 = Exec(CpuTier.BlockCache, a => { a.fnsave(__[0x2000]); }, c => { LoadState(c); NullDs(c); });
        Faulted(m2, Vectors.GP, TestMachine.CodeBase, 0);
        Assert.Equal(0x027F, m2.Cpu.Fpu.Fcw);
    }

    [Fact]
    public void FnstenvMasksExceptionsFldenvLoads()
    {
        var m = Exec(CpuTier.BlockCache, a => { a.fnstenv(__[0x2000]); a.fnstcw(__word_ptr[0x2100]); a.fldenv(__[0x2000]); }, c => LoadState(c));
        Assert.Equal(0xFFFF_027Fu, m.Memory.Read32(0x2000));
        Assert.Equal(0x027Fu | 0x3F, m.Memory.Read16(0x2100));
        Assert.Equal(0x027F, m.Cpu.Fpu.Fcw);
        Assert.Equal(0x11223344u, m.Cpu.Fpu.Fip);
    }
}
