using Replayvisor.Engine.Cpu;
using static Iced.Intel.AssemblerRegisters;
using static Replayvisor.Engine.Tests.Cpu.CpuTest;

namespace Replayvisor.Engine.Tests.Cpu;

/// <summary>Forwards delivery to the machine's recording host and logs port accesses.</summary>
public sealed class PortHost(RecordingHost inner) : ICpuHost
{
    public List<(ushort Port, int Size, uint Value, bool Out)> Log { get; } = new();
    public uint NextIn = 0x1000;
    public void Deliver(X86Cpu cpu, in CpuEvent e) => inner.Deliver(cpu, e);
    public void Halt(X86Cpu cpu) => inner.Halt(cpu);
    public ulong ReadTsc(X86Cpu cpu) => inner.ReadTsc(cpu);
    public void Cpuid(X86Cpu cpu, uint leaf, uint subleaf, out uint eax, out uint ebx, out uint ecx, out uint edx) =>
        inner.Cpuid(cpu, leaf, subleaf, out eax, out ebx, out ecx, out edx);
    public uint PortIn(X86Cpu cpu, ushort port, int size) { uint v = NextIn++; Log.Add((port, size, v, false)); return v; }
    public void PortOut(X86Cpu cpu, ushort port, int size, uint value) => Log.Add((port, size, value, true));
    public bool ReadMsr(X86Cpu cpu, uint msr, out ulong value) => inner.ReadMsr(cpu, msr, out value);
    public bool WriteMsr(X86Cpu cpu, uint msr, ulong value) => inner.WriteMsr(cpu, msr, value);
}

public class IoTests
{
    private const uint Tss = 0x5000;

    private static (TestMachine, PortHost) Machine(CpuTier bc, Action<Iced.Intel.Assembler> code, Action<X86Cpu>? setup = null)
    {
        var m = new TestMachine(blockCache: bc).Load(code);
        var h = new PortHost(m.Host);
        m.Cpu.Host = h;
        setup?.Invoke(m.Cpu);
        m.Run();
        return (m, h);
    }

    /// <summary>A 32-bit TSS at 0x5000 whose bitmap (at +0x68) allows only ports 0x60, 0x64 and 0x70-0x7F, limit covering ports 0-0xFF.</summary>
    private static void Cpl3WithTss(X86Cpu c)
    {
        c.Cpl = 3;
        c.Memory.Write16(Tss + 0x66, 0x68);
        for (uint i = 0; i < 32; i++) c.Memory.Write8(Tss + 0x68 + i, 0xFF);
        c.Memory.Write8(Tss + 0x68 + 12, 0xEE);   // ports 0x60 and 0x64 allowed
        c.Memory.Write8(Tss + 0x68 + 14, 0x00);   // 0x70-0x77
        c.Memory.Write8(Tss + 0x68 + 15, 0x00);   // 0x78-0x7F
        c.Tr = new SegmentCache { Base = Tss, Limit = 0x68 + 31, Attr = 0x8B, Usable = true };
        c.Tr.Refresh();
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void InOutAtCpl0(CpuTier bc)
    {
        var (m, h) = Machine(bc, a =>
        {
            a.@in(al, 0x60); a.mov(dx, 0x3F8); a.@in(ax, dx); a.mov(ebx, eax); a.@in(eax, dx);
            a.@out(0x80, al); a.mov(eax, 0xCAFEBABE); a.@out(dx, eax); a.@out(dx, ax);
        }, c => c.Eax = 0xFFFF_FFFF);
        Halted(m);
        Assert.Equal(0xFFFF_1001u, m.Cpu.Ebx);
        Assert.Equal(new (ushort, int, uint, bool)[]
        {
            (0x60, 1, 0x1000, false), (0x3F8, 2, 0x1001, false), (0x3F8, 4, 0x1002, false),
            (0x80, 1, 0x02, true), (0x3F8, 4, 0xCAFEBABE, true), (0x3F8, 2, 0xBABE, true),
        }, h.Log);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void Cpl3WithoutTssRaisesGp(CpuTier bc)
    {
        var (m, h) = Machine(bc, a => { a.@in(al, 0x60); }, c => c.Cpl = 3);
        Faulted(m, Vectors.GP, TestMachine.CodeBase, 0);
        Assert.Empty(h.Log);
    }

    [Fact]
    public void Cpl3WithIopl3IsAllowed()
    {
        var (m, h) = Machine(CpuTier.BlockCache, a => { a.@out(0x61, al); a.nop(); }, c => { c.Cpl = 3; c.Eflags = Fl.IOPL | 2; });
        Assert.Single(h.Log);
        Assert.Equal(Vectors.GP, m.Host.Events[0].Vector); // the final hlt at CPL 3
        Assert.Equal(TestMachine.CodeBase + 3, m.Host.Events[0].InstructionEip);
    }

    [Theory]
    [InlineData(0x60, 1, true)]
    [InlineData(0x61, 1, false)]
    [InlineData(0x64, 1, true)]
    [InlineData(0x60, 2, false)]     // 0x61 denied
    [InlineData(0x70, 4, true)]
    [InlineData(0x7E, 4, false)]     // 0x80 denied (crosses into the next byte)
    [InlineData(0x7E, 2, true)]
    [InlineData(0xFF, 1, false)]     // bit set
    [InlineData(0x100, 1, false)]    // beyond the TSS limit
    public void BitmapDecides(int port, int size, bool allowed)
    {
        var (m, h) = Machine(CpuTier.BlockCache, a =>
        {
            a.mov(dx, (ushort)port);
            if (size == 1) a.@in(al, dx); else if (size == 2) a.@in(ax, dx); else a.@in(eax, dx);
        }, Cpl3WithTss);
        var e = m.Host.Events[0];
        Assert.Equal(Vectors.GP, e.Vector);
        Assert.Equal(0u, e.ErrorCode);
        uint inEip = TestMachine.CodeBase + 4;
        if (allowed)
        {
            Assert.Single(h.Log);
            Assert.NotEqual(inEip, e.InstructionEip); // the fault is the final hlt
        }
        else
        {
            Assert.Empty(h.Log);
            Assert.Equal(inEip, e.InstructionEip);
        }
    }

    [Fact]
    public void Tss16BitIsRejected()
    {
        var (m, h) = Machine(CpuTier.BlockCache, a => { a.@in(al, 0x60); }, c => { Cpl3WithTss(c); c.Tr.Attr = 0x83; c.Tr.Refresh(); });
        Faulted(m, Vectors.GP, TestMachine.CodeBase, 0);
        Assert.Empty(h.Log);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void RepInsOuts(CpuTier bc)
    {
        var (m, h) = Machine(bc, a =>
        {
            a.mov(dx, 0x70); a.mov(edi, 0x3000); a.mov(ecx, 3); a.rep.insw();
            a.mov(esi, 0x3000); a.mov(ecx, 2); a.rep.outsd();
        });
        Halted(m);
        Assert.Equal(0x1000u, m.Memory.Read16(0x3000));
        Assert.Equal(0x1002u, m.Memory.Read16(0x3004));
        Assert.Equal(0x3006u, m.Cpu.Edi);
        Assert.Equal(5, h.Log.Count);
        Assert.Equal((ushort)0x70, h.Log[3].Port);
        Assert.Equal(0x1001_1000u, h.Log[3].Value);
        Assert.True(h.Log[4].Out);
    }

    [Fact]
    public void InsProbesBeforeReadingThePort()
    {
        var (m, h) = Machine(CpuTier.BlockCache, a => { a.mov(dx, 0x70); a.insb(); }, c =>
        {
            var es = SegmentCache.Flat(0, 0x91); c.Segs[Seg.ES] = es; // read-only data segment
            c.Edi = 0x3000;
        });
        Faulted(m, Vectors.GP, TestMachine.CodeBase + 4, 0);
        Assert.Empty(h.Log);
    }

    [Fact]
    public void OutsDeniedAtCpl3()
    {
        var (m, h) = Machine(CpuTier.BlockCache, a => { a.mov(dx, 0x61); a.rep.outsb(); }, c => { Cpl3WithTss(c); c.Ecx = 5; });
        Faulted(m, Vectors.GP, TestMachine.CodeBase + 4, 0);
        Assert.Equal(5u, m.Cpu.Ecx);
        Assert.Empty(h.Log);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void CpuidAndRdtsc(CpuTier bc)
    {
        var m = Exec(bc, a => { a.mov(eax, 7); a.mov(ecx, 1); a.cpuid(); a.mov(__dword_ptr[0x2000], ebx); a.mov(__dword_ptr[0x2004], eax); a.rdtsc(); });
        Assert.Equal(1u, m.Memory.Read32(0x2000));
        Assert.Equal(7u, m.Memory.Read32(0x2004));
        Assert.Equal(0x5678_9ABCu, m.Cpu.Eax);
        Assert.Equal(0x1234u, m.Cpu.Edx);
    }

    [Fact]
    public void RdtscWithTsdFaultsOnlyAboveCpl0()
    {
        var m = Exec(CpuTier.BlockCache, a => { a.rdtsc(); }, c => { c.Cr4 |= Cr4Bits.TSD; c.Cpl = 3; });
        Faulted(m, Vectors.GP, TestMachine.CodeBase, 0);
        var m0 = Exec(CpuTier.BlockCache, a => { a.rdtsc(); }, c => c.Cr4 |= Cr4Bits.TSD);
        Halted(m0);
        Assert.Equal(0x5678_9ABCu, m0.Cpu.Eax);
    }
}
