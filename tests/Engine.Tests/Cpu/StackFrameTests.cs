using Replayvisor.Engine.Cpu;
using static Iced.Intel.AssemblerRegisters;
using static Replayvisor.Engine.Tests.Cpu.CpuTest;

namespace Replayvisor.Engine.Tests.Cpu;

public class StackFrameTests
{
    private const uint Top = TestMachine.StackTop;

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void EnterLevelZeroAndLeave(CpuTier bc)
    {
        var m = Exec(bc, a => { a.enter(16, 0); a.mov(__dword_ptr[0x2000], ebp); a.mov(__dword_ptr[0x2004], esp); a.leave(); },
            c => c.Ebp = 0x1234);
        Halted(m);
        Assert.Equal(Top - 4, m.Memory.Read32(0x2000));
        Assert.Equal(Top - 4 - 16, m.Memory.Read32(0x2004));
        Assert.Equal(0x1234u, m.Memory.Read32(Top - 4));
        Assert.Equal(0x1234u, m.Cpu.Ebp);
        Assert.Equal(Top, m.Cpu.Esp);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void EnterNested(CpuTier bc)
    {
        var m = Exec(bc, a => { a.enter(8, 3); }, c =>
        {
            c.Ebp = 0x7F000; c.Memory.Write32(0x7EFFC, 0xAAAA); c.Memory.Write32(0x7EFF8, 0xBBBB);
        });
        Assert.Equal(0x7F000u, m.Memory.Read32(Top - 4));
        Assert.Equal(0xAAAAu, m.Memory.Read32(Top - 8));
        Assert.Equal(0xBBBBu, m.Memory.Read32(Top - 12));
        Assert.Equal(Top - 4, m.Memory.Read32(Top - 16));
        Assert.Equal(Top - 4, m.Cpu.Ebp);
        Assert.Equal(Top - 16 - 8, m.Cpu.Esp);
    }

    [Fact]
    public void EnterLevelOneAndLevelModulo32()
    {
        var m = Exec(CpuTier.BlockCache, a => { a.enter(0, 33); }, c => c.Ebp = 0x5555);
        // level 33 mod 32 = 1: push ebp, push frame pointer.
        Assert.Equal(0x5555u, m.Memory.Read32(Top - 4));
        Assert.Equal(Top - 4, m.Memory.Read32(Top - 8));
        Assert.Equal(Top - 8, m.Cpu.Esp);
        Assert.Equal(Top - 4, m.Cpu.Ebp);
    }

    [Fact]
    public void Enter16BitOperandSize()
    {
        var m = Exec(CpuTier.BlockCache, a => { a.db(0x66, 0xC8, 0x04, 0x00, 0x00); }, c => c.Ebp = 0xABCD_1234);
        Assert.Equal(0x1234u, m.Memory.Read16(Top - 2));
        Assert.Equal(0xABCD_FFFEu, m.Cpu.Ebp);
        Assert.Equal(Top - 2 - 4, m.Cpu.Esp);
    }

    [Fact]
    public void EnterFaultChangesNothing()
    {
        var m = Exec(CpuTier.BlockCache, a => { a.enter(8, 2); }, c =>
        {
            c.Ebp = 0x7F000;
            var ss = SegmentCache.Flat(0, 0x93); ss.Limit = Top - 7; ss.Refresh(); c.Segs[Seg.SS] = ss; // only one slot below the top fits
        });
        Faulted(m, Vectors.SS, TestMachine.CodeBase, 0);
        Assert.Equal(Top, m.Cpu.Esp);
        Assert.Equal(0x7F000u, m.Cpu.Ebp);
        Assert.Equal(0u, m.Memory.Read32(Top - 4));
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void PushadPopad(CpuTier bc)
    {
        var m = Exec(bc, a =>
        {
            a.mov(eax, 1); a.mov(ecx, 2); a.mov(edx, 3); a.mov(ebx, 4); a.mov(ebp, 6); a.mov(esi, 7); a.mov(edi, 8);
            a.pushad();
            a.mov(__dword_ptr[0x2000], esp);
            a.mov(eax, 0); a.mov(ecx, 0); a.mov(edx, 0); a.mov(ebx, 0); a.mov(ebp, 0); a.mov(esi, 0); a.mov(edi, 0);
            a.mov(__dword_ptr[Top - 20], 0x99999999); // the saved ESP slot is ignored
            a.popad();
        });
        Assert.Equal(Top - 32, m.Memory.Read32(0x2000));
        Assert.Equal(1u, m.Memory.Read32(Top - 4));
        Assert.Equal(8u, m.Memory.Read32(Top - 32));
        Assert.Equal(new uint[] { 1, 2, 3, 4, Top, 6, 7, 8 }, m.Cpu.Gpr);
    }

    [Fact]
    public void Pusha16Popa16()
    {
        var m = Exec(CpuTier.BlockCache, a => { a.mov(eax, 0x11110001); a.mov(edi, 0x22220008); a.pusha(); a.mov(eax, 0); a.popa(); });
        Assert.Equal(0x0001u, m.Memory.Read16(Top - 2));
        Assert.Equal(unchecked((ushort)Top), m.Memory.Read16(Top - 10));
        Assert.Equal(0x00000001u, m.Cpu.Eax);
        Assert.Equal(Top, m.Cpu.Esp);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void PushfdClearsVmRf(CpuTier bc)
    {
        var m = Exec(bc, a => { a.pushfd(); a.pushf(); }, c => c.Eflags = Fl.RF | Fl.VM | Fl.AC | Fl.ID | CF | 2);
        Assert.Equal(Fl.AC | Fl.ID | CF | 2, m.Memory.Read32(Top - 4));
        Assert.Equal(CF | 2, m.Memory.Read16(Top - 6));
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void PopfdAtCpl0(CpuTier bc)
    {
        var m = Exec(bc, a => { a.push(0x00273ED7 | 0x10000); a.popfd(); }, c => c.Eflags = 2);
        // All writable bits load, including IF, IOPL, AC and ID; RF is cleared and VM stays clear.
        Assert.Equal(Fl.ID | Fl.AC | Fl.IOPL | OF | Fl.DF | Fl.IF | SF | ZF | AF | PF | CF | 2, m.Cpu.Eflags);
    }

    [Fact]
    public void PopfdAtCpl3KeepsIfAndIopl()
    {
        var m = Exec(CpuTier.BlockCache, a => { a.push(0x3000 | 0x200 | 1); a.popfd(); }, c => { c.Cpl = 3; c.Eflags = 2; });
        // IOPL not changeable, IF not changeable (CPL 3 > IOPL 0), CF loads.
        Assert.Equal(CF | 2, m.Cpu.Eflags);
    }

    [Fact]
    public void PopfdAtCpl1WithIopl1ChangesIfNotIopl()
    {
        var m = Exec(CpuTier.BlockCache, a => { a.push(0x0200); a.popfd(); }, c => { c.Cpl = 1; c.Eflags = 0x1000 | 2; });
        Assert.Equal(0x1000u | Fl.IF | 2, m.Cpu.Eflags);
    }

    [Fact]
    public void Popf16ChangesLowHalfOnly()
    {
        var m = Exec(CpuTier.BlockCache, a => { a.db(0x66, 0x68, 0xC1, 0x08); a.popf(); }, c => c.Eflags = Fl.AC | Fl.RF | 2);
        Assert.Equal(Fl.AC | Fl.RF | OF | SF | ZF | CF | 2, m.Cpu.Eflags);
    }
    /// <summary>
    /// pusha on an expand-down stack whose limit admits the frame's upper slots but not its lower
    /// ones: #SS(0) before anything is written (the first slots' probes pass, a later one fails;
    /// SDM vol. 3 §5.3 expand-down limits, vol. 2 PUSHA), ESP unchanged.
    /// </summary>
    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void PushaOnAnExpandDownStackFaultsOnItsLowerSlots(CpuTier bc)
    {
        var m = Exec(bc, a => a.pushad(), c =>
        {
            // Expand-down, writable, accessed, present, 32-bit: valid offsets are (Top - 20, 0xFFFFFFFF].
            var ss = new SegmentCache { Selector = 0x10, Base = 0, Limit = Top - 20, Attr = 0x80 | 0x10 | 0x7 | 0x400, Usable = true };
            ss.Refresh();
            c.Segs[Seg.SS] = ss;
            c.Eax = 0x11111111;
        });
        Faulted(m, Vectors.SS, TestMachine.CodeBase, 0);
        Assert.Equal(Top, m.Cpu.Esp);
        Assert.Equal(0u, m.Memory.Read32(Top - 4)); // not even the first (EAX) slot was written
    }
}
