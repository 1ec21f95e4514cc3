using Replayvisor.Engine.Cpu;
using static Iced.Intel.AssemblerRegisters;
using static Replayvisor.Engine.Tests.Cpu.CpuTest;

namespace Replayvisor.Engine.Tests.Cpu;

public class StringOpsTests
{
    private static void Fill(TestMachine m, uint at, string s)
    {
        for (int i = 0; i < s.Length; i++) m.Memory.Write8(at + (uint)i, (byte)s[i]);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void RepMovsdForwardCountsEachIteration(CpuTier bc)
    {
        var m = new TestMachine(blockCache: bc).Load(a => { a.mov(ecx, 4); a.mov(esi, 0x2000); a.mov(edi, 0x3000); a.rep.movsd(); });
        for (uint i = 0; i < 16; i++) m.Memory.Write8(0x2000 + i, (byte)(i + 1));
        m.Run();
        Halted(m);
        for (uint i = 0; i < 16; i++) Assert.Equal((byte)(i + 1), m.Memory.Read8(0x3000 + i));
        Assert.Equal(0u, m.Cpu.Ecx);
        Assert.Equal(0x2010u, m.Cpu.Esi);
        Assert.Equal(0x3010u, m.Cpu.Edi);
        Assert.Equal(3ul + 4 + 1, m.Cpu.Icount);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void RepMovsbBackward(CpuTier bc)
    {
        var m = new TestMachine(blockCache: bc).Load(a => { a.std(); a.mov(ecx, 3); a.mov(esi, 0x2002); a.mov(edi, 0x3002); a.rep.movsb(); a.cld(); });
        Fill(m, 0x2000, "xyz");
        m.Run();
        Assert.Equal((byte)'x', m.Memory.Read8(0x3000));
        Assert.Equal((byte)'z', m.Memory.Read8(0x3002));
        Assert.Equal(0x1FFFu, m.Cpu.Esi);
        Assert.Equal(0x2FFFu, m.Cpu.Edi);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void ZeroCountRetiresOnce(CpuTier bc)
    {
        var m = Exec(bc, a => { a.xor(ecx, ecx); a.mov(edi, 0x3000); a.rep.stosd(); }, c => c.Eax = 0xDEADBEEF);
        Assert.Equal(0u, m.Memory.Read32(0x3000));
        Assert.Equal(0x3000u, m.Cpu.Edi);
        Assert.Equal(4ul, m.Cpu.Icount);
    }

    [Fact]
    public void SixteenBitAddressSizeUsesSiDiCx()
    {
        // 67 F3 A4: rep movsb with 16-bit addressing; the upper halves of ESI/EDI/ECX are preserved.
        var m = Exec(CpuTier.BlockCache, a => { a.db(0x67, 0xF3, 0xA4); },
            c => { c.Esi = 0x5555_2000; c.Edi = 0x6666_3000; c.Ecx = 0x7777_0002; c.Memory.Write16(0x2000, 0x4241); });
        Halted(m);
        Assert.Equal(0x4241u, m.Memory.Read16(0x3000));
        Assert.Equal(0x5555_2002u, m.Cpu.Esi);
        Assert.Equal(0x6666_3002u, m.Cpu.Edi);
        Assert.Equal(0x7777_0000u, m.Cpu.Ecx);
    }

    [Fact]
    public void SixteenBitAddressWraps()
    {
        var m = Exec(CpuTier.BlockCache, a => { a.db(0x67, 0xAA); }, c => { c.Edi = 0x0001_FFFF; c.Eax = 0x5A; });
        Assert.Equal(0x5Au, m.Memory.Read8(0xFFFF));
        Assert.Equal(0x0001_0000u, m.Cpu.Edi);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void RepeCmpsbStopsAtMismatch(CpuTier bc)
    {
        var m = new TestMachine(blockCache: bc).Load(a => { a.mov(ecx, 10); a.mov(esi, 0x2000); a.mov(edi, 0x3000); a.repe.cmpsb(); });
        Fill(m, 0x2000, "abcX"); Fill(m, 0x3000, "abcY");
        m.Run();
        Assert.Equal(6u, m.Cpu.Ecx);
        Assert.Equal(0x2004u, m.Cpu.Esi);
        Flags(m.Cpu, ZF | CF | SF, CF | SF); // 'X' - 'Y' = -1
        Assert.Equal(3ul + 4 + 1, m.Cpu.Icount);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void RepneScasbFindsTerminator(CpuTier bc)
    {
        var m = new TestMachine(blockCache: bc).Load(a => { a.xor(eax, eax); a.mov(ecx, -1); a.mov(edi, 0x3000); a.repne.scasb(); a.not(ecx); a.dec(ecx); });
        Fill(m, 0x3000, "hello\0");
        m.Run();
        Assert.Equal(5u, m.Cpu.Ecx);
        Assert.Equal(0x3006u, m.Cpu.Edi);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void LodsStosAllSizes(CpuTier bc)
    {
        var m = Exec(bc, a =>
        {
            a.mov(esi, 0x2000); a.mov(edi, 0x3000);
            a.lodsb(); a.stosb(); a.lodsw(); a.stosw(); a.lodsd(); a.stosd();
        }, c => { c.Memory.Write32(0x2000, 0x44332211); c.Memory.Write32(0x2004, 0x88776655); });
        Assert.Equal(0x44332211u, m.Memory.Read32(0x3000));
        Assert.Equal(0x776655u, m.Memory.Read32(0x3004) & 0xFFFFFF);
        Assert.Equal(0x77665544u, m.Cpu.Eax);
        Assert.Equal(0x2007u, m.Cpu.Esi);
        Assert.Equal(0x3007u, m.Cpu.Edi);
    }

    [Fact]
    public void SourceSegmentOverride()
    {
        // fs: movsb with FS based at 0x1000: reads 0x1000 + 0x2000.
        var m = Exec(CpuTier.BlockCache, a => { a.db(0x64, 0xA4); }, c =>
        {
            var fs = SegmentCache.Flat(0, 0x93); fs.Base = 0x1000; fs.Limit = 0xFFFF; fs.Refresh();
            c.Segs[Seg.FS] = fs; c.Esi = 0x2000; c.Edi = 0x4000; c.Memory.Write8(0x3000, 0x77);
        });
        Assert.Equal(0x77u, m.Memory.Read8(0x4000));
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void StopsBetweenIterationsAndResumes(CpuTier bc)
    {
        var m = new TestMachine(blockCache: bc).Load(a => { a.mov(ecx, 10); a.mov(edi, 0x3000); a.mov(al, 1); a.rep.stosb(); a.mov(ebx, 1); });
        Assert.Equal(StopReason.InstructionLimit, m.Cpu.Run(3 + 4));
        Assert.Equal(7ul, m.Cpu.Icount);
        Assert.Equal(6u, m.Cpu.Ecx);
        Assert.Equal(0x3004u, m.Cpu.Edi);
        Assert.Equal(TestMachine.CodeBase + 12, m.Cpu.Eip); // still at the rep instruction
        Assert.Equal(0u, m.Memory.Read8(0x3004));
        Assert.Equal(StopReason.InstructionLimit, m.Cpu.Run(3 + 10 + 1));
        Assert.Equal(0u, m.Cpu.Ecx);
        Assert.Equal(1u, m.Cpu.Ebx);
        m.Run();
        Assert.Equal(3ul + 10 + 2, m.Cpu.Icount);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void BudgetEndingInsideBlockAfterShortRep(CpuTier bc)
    {
        // A rep that completes within the budget must not let the rest of the block overrun the stop count.
        var m = new TestMachine(blockCache: bc).Load(a => { a.mov(ecx, 5); a.rep.stosb(); a.inc(ebx); a.inc(ebx); a.inc(ebx); a.inc(ebx); });
        m.Cpu.Edi = 0x3000;
        Assert.Equal(StopReason.InstructionLimit, m.Cpu.Run(1 + 5 + 2));
        Assert.Equal(8ul, m.Cpu.Icount);
        Assert.Equal(2u, m.Cpu.Ebx);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void FaultMidRepKeepsCompletedIterations(CpuTier bc)
    {
        var m = Exec(bc, a => { a.mov(ecx, 4); a.mov(edi, 0x2000); a.rep.stosd(); }, c =>
        {
            var es = SegmentCache.Flat(0, 0x93); es.Limit = 0x2007; es.Refresh(); c.Segs[Seg.ES] = es; c.Eax = 0x11223344;
        });
        Faulted(m, Vectors.GP, TestMachine.CodeBase + 10, 0);
        Assert.Equal(2u, m.Cpu.Ecx);
        Assert.Equal(0x2008u, m.Cpu.Edi);
        Assert.Equal(0x11223344u, m.Memory.Read32(0x2004));
        Assert.Equal(2ul + 2, m.Cpu.Icount);
    }
}

public class StringOpsPrefixTests
{
    [Fact]
    public void RepneOnMovsActsAsRep()
    {
        // F2 A4: repne movsb copies ECX bytes regardless of ZF.
        var m = CpuTest.Exec(CpuTier.BlockCache, a => { a.db(0xF2, 0xA4); }, c =>
        {
            c.Esi = 0x2000; c.Edi = 0x3000; c.Ecx = 3; c.Eflags = Fl.ZF | 2; c.Memory.Write32(0x2000, 0x00636261);
        });
        Assert.Equal(0x636261u, m.Memory.Read32(0x3000));
        Assert.Equal(0u, m.Cpu.Ecx);
    }

    [Fact]
    public void WaitingFormsDecodeToTheSameOperations()
    {
        // 9B DB E3 (finit) and 9B D9 3D m16 (fstcw).
        var m = CpuTest.Exec(CpuTier.BlockCache, a => { a.db(0x9B, 0xDB, 0xE3); a.db(0x9B, 0xD9, 0x3D, 0x00, 0x20, 0x00, 0x00); },
            c => c.Fpu.Fcw = 0);
        CpuTest.Halted(m);
        Assert.Equal(0x037Fu, m.Memory.Read16(0x2000));
    }
}
