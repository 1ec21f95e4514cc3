using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Xen;
using Replayvisor.Engine.Xen.Mm;
using static Replayvisor.Engine.Tests.Xen.Mm.MmFixture;

namespace Replayvisor.Engine.Tests.Xen.Mm;

public class MmBootTests
{
    [Theory, InlineData(false), InlineData(true)]
    public void BootSetsControlRegistersDescriptorTablesAndBase(bool pae)
    {
        var f = new MmFixture(pae);
        var cpu = f.Cpu;
        Assert.Equal(Cr0Bits.PE | Cr0Bits.MP | Cr0Bits.ET | Cr0Bits.NE | Cr0Bits.WP | Cr0Bits.PG, cpu.Cr0);
        Assert.Equal(pae ? Cr4Bits.PAE : 0u, cpu.Cr4);
        Assert.Equal(pae ? 0x800ul : 0ul, cpu.Efer);
        Assert.Equal(f.Top << 12, cpu.Cr3);
        Assert.Equal(f.Top, f.Mm.CurrentBaseMfn);
        Assert.Equal(f.Layout.MachToPhysVirtEnd, cpu.GdtrBase);
        Assert.Equal(f.Mm.GdtVirtualBase, cpu.GdtrBase);
        Assert.Equal(0xEFFFu, cpu.GdtrLimit);
        Assert.Equal(0xE040, cpu.Tr.Selector);
        Assert.Equal(0x8B, cpu.Tr.Attr & 0xFF);
        Assert.Equal(f.Mm.TssVirtualBase, cpu.Tr.Base);
        Assert.Equal(0x67u, cpu.Tr.Limit);
        Assert.Equal(0, cpu.Ldtr.Selector);
        Assert.False(cpu.Ldtr.Present);
        Assert.Equal(f.Mm.GdtVirtualBase + 0x10000, f.Mm.LdtShadowBase);
        Assert.Equal(f.Mm.GdtVirtualBase + 0x20000, f.Mm.TssVirtualBase);
    }

    [Theory, InlineData(false), InlineData(true)]
    public void BootTypesAndPinsTheInitialTables(bool pae)
    {
        var f = new MmFixture(pae);
        var ft = f.Mm.Frames;
        Assert.True(ft.IsPinned(f.Top));
        Assert.Equal(pae ? PageType.L3 : PageType.L2, ft.TypeOf(f.Top));
        Assert.Equal(2, ft.TypeCount(f.Top)); // pin + base
        foreach (var t in f.Domain.PageTables)
        {
            Assert.Equal((PageType)t.Level, ft.TypeOf(t.Mfn));
            Assert.True(ft.IsValidated(t.Mfn));
            Assert.True(ft.TypeCount(t.Mfn) > 0);
        }
        Assert.Equal(pae, ft.IsXenPrivate(f.Domain.XenSlotL2.Mfn));
        // Kernel pages mapped RW hold one writable type ref each.
        uint kernelMfn = f.MfnAt(f.Domain.Guest.Entry);
        Assert.Equal(PageType.Writable, ft.TypeOf(kernelMfn));
        Assert.Equal(1, ft.TypeCount(kernelMfn));
        Assert.True(f.Mm.IsGuestFrame(kernelMfn));
        Assert.True(f.Mm.IsGuestFrame(f.Domain.SharedInfoMfn));
        Assert.False(f.Mm.IsGuestFrame(f.Domain.M2PFirstMfn));
        Assert.False(f.Mm.IsGuestFrame(0));
    }

    [Theory, InlineData(false), InlineData(true)]
    public void M2PIsReadOnlySupervisorOnlyAndEndsWithItsFrames(bool pae)
    {
        var f = new MmFixture(pae);
        uint m2p = f.Layout.MachToPhysVirtStart;
        uint startInfoMfn = f.Domain.StartInfoMfn;
        uint va = m2p + startInfoMfn * 4;
        Assert.True(f.CanTranslate(va, Access.Read, false, out _));
        Assert.Equal((ulong)f.Domain.Virtual.Pfn(f.Domain.StartInfoVa), f.Cpu.ReadSystem(va, 4));
        Assert.False(f.CanTranslate(va, Access.Write, false, out _));
        Assert.False(f.CanTranslate(va, Access.Read, true, out _));
        Assert.Equal(0x55555555ul, f.Cpu.ReadSystem(m2p, 4)); // mfn 0: not a domain frame
        // The last M2P frame is mapped, the page after it is not.
        uint end = m2p + f.Domain.M2PFrameCount * 4096;
        Assert.True(f.CanTranslate(end - 4, Access.Read, false, out _));
        Assert.False(f.CanTranslate(end, Access.Read, false, out _));
        Assert.Equal(0u, f.Cpu.PendingEvent.ErrorCode & PfErr.P); // not-present fault
    }

    [Theory, InlineData(false), InlineData(true)]
    public void HypervisorHoleIsEmptyExceptM2PAndPerDomainArea(bool pae)
    {
        var f = new MmFixture(pae);
        uint m2pPagesEnd = f.Layout.MachToPhysVirtStart + f.Domain.M2PFrameCount * 4096;
        uint perDomain = f.Mm.GdtVirtualBase;
        for (ulong va = f.Layout.HypervisorVirtStart; va < 0x1_0000_0000ul; va += 0x1000)
        {
            uint v = (uint)va;
            bool expect = v < m2pPagesEnd
                || (v >= perDomain && v < perDomain + 15 * 0x1000)      // GDT pages 0–14
                || v == f.Mm.TssVirtualBase;
            Assert.True(expect == f.CanTranslate(v, Access.Read, false, out _), $"0x{v:x8}");
            Assert.False(f.CanTranslate(v, Access.Read, true, out _), $"user 0x{v:x8}");
        }
    }

    [Theory, InlineData(false), InlineData(true)]
    public void GdtHoldsTheReservedDescriptorsAndTssTheKernelStack(bool pae)
    {
        var f = new MmFixture(pae);
        uint gdt = f.Cpu.GdtrBase;
        for (int sel = 0xE008; sel <= 0xE030; sel += 8)
            Assert.Equal(f.Layout.ReservedGdtDescriptor(sel >> 3), f.Cpu.ReadSystem(gdt + (uint)sel, 8));
        Assert.Equal(0ul, f.Cpu.ReadSystem(gdt + 8, 8)); // guest GDT page not supplied: a null descriptor
        Assert.False(f.CanTranslate(gdt, Access.Write, false, out _));
        uint tss = f.Cpu.Tr.Base;
        Assert.Equal((ulong)f.Domain.Vcpu0.KernelSp, f.Cpu.ReadSystem(tss + 0x0C, 4));
        Assert.Equal((ulong)XenLayout.FlatKernelSs, f.Cpu.ReadSystem(tss + 0x10, 2));
        Assert.True(f.Cpu.ReadSystem(tss + 0x66, 2) > f.Cpu.Tr.Limit); // no I/O bitmap
        f.Mm.SetKernelStack(0xE021, 0xC0123450);
        Assert.Equal(0xC0123450ul, f.Cpu.ReadSystem(tss + 0x0C, 4));
        Assert.Equal(0xC0123450u, f.Mm.KernelSp);
    }

    [Fact]
    public void VmAssistFollowsTheVmasstRules()
    {
        var f = new MmFixture(true);
        Assert.Equal(1u << 3, f.Mm.VmAssist); // pae_extended_cr3 from the builder
        Assert.Equal(0, f.Mm.VmAssistOp(Vmasst.CmdEnable, 2));
        Assert.Equal((1u << 3) | (1u << 2), f.Mm.VmAssist);
        Assert.Equal(0, f.Mm.VmAssistOp(Vmasst.CmdDisable, 3));
        Assert.Equal(1u << 2, f.Mm.VmAssist);
        Assert.Equal(-Errno.EINVAL, f.Mm.VmAssistOp(Vmasst.CmdEnable, 4));
        Assert.Equal(-Errno.ENOSYS, f.Mm.VmAssistOp(2, 1));
        Assert.Equal(-Errno.EINVAL, f.Mm.VmAssistOp(2, 4)); // the type is checked first
    }

    [Fact]
    public void AllocXenFrameSharesAZeroedSpareFrame()
    {
        var f = new MmFixture(false);
        uint mfn = f.Mm.AllocXenFrame();
        Assert.NotEqual(0u, mfn);
        Assert.True(mfn >= f.Domain.SpareFirstMfn && mfn < f.Domain.SpareFirstMfn + f.Domain.SpareCount);
        Assert.True(f.Mm.IsGuestFrame(mfn));
        f.Map(f.SpareVa(0), mfn, P | RW | A);
        Assert.NotEqual(mfn, f.Mm.AllocXenFrame());
    }
}
