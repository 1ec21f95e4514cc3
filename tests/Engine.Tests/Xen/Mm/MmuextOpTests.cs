using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Xen;
using Replayvisor.Engine.Xen.Mm;
using static Replayvisor.Engine.Tests.Xen.Mm.MmFixture;

namespace Replayvisor.Engine.Tests.Xen.Mm;

public class MmuextOpTests
{
    private const long Einval = -Errno.EINVAL;

    [Theory, InlineData(false), InlineData(true)]
    public void PinUnpinAndDoublePin(bool pae)
    {
        var f = new MmFixture(pae);
        uint t = f.FreeMfn(0);
        Assert.Equal((0L, 1u), f.Ext((MmuextCmd.PinL1Table, t, 0)));
        Assert.True(f.Mm.Frames.IsPinned(t));
        Assert.Equal(PageType.L1, f.Mm.Frames.TypeOf(t));
        Assert.Equal((Einval, 0u), f.Ext((MmuextCmd.PinL1Table, t, 0)));     // already pinned
        Assert.Equal((Einval, 0u), f.Ext((MmuextCmd.PinL2Table, t, 0)));     // type conflict
        Assert.Equal(1, f.Mm.Frames.TypeCount(t));
        Assert.Equal(Einval, f.Uvm(f.SpareVa(0), f.Entry(t, P | RW | A)));   // pinned table: no RW mapping
        Assert.Equal((0L, 1u), f.Ext((MmuextCmd.UnpinTable, t, 0)));
        Assert.False(f.Mm.Frames.IsPinned(t));
        Assert.Equal(0, f.Mm.Frames.TypeCount(t));
        Assert.Equal((Einval, 0u), f.Ext((MmuextCmd.UnpinTable, t, 0)));     // not pinned
        Assert.Equal((Einval, 0u), f.Ext((MmuextCmd.UnpinTable, f.Domain.M2PFirstMfn, 0)));
        Assert.Equal(0, f.Uvm(f.SpareVa(0), f.Entry(t, P | RW | A)));        // unpinned: a plain page again
        // A frame mapped RW cannot be pinned; the done count stops at the failure.
        Assert.Equal((Einval, 1u), f.Ext((MmuextCmd.PinL1Table, f.FreeMfn(1), 0), (MmuextCmd.PinL1Table, t, 0)));
        Assert.Equal((Einval, 0u), f.Ext((MmuextCmd.PinL1Table, f.Domain.Frames.TotalFrames, 0)));
        Assert.Equal((Einval, 0u), f.Ext((MmuextCmd.PinL1Table, f.Domain.M2PFirstMfn, 0)));
    }

    [Theory, InlineData(false), InlineData(true)]
    public void PinValidatesEveryEntry(bool pae)
    {
        var f = new MmFixture(pae);
        uint t = f.FreeMfn(0);
        f.Domain.Memory.Write32(((ulong)t << 12) + 8, (f.Domain.M2PFirstMfn << 12) | 1); // maps a Xen frame
        Assert.Equal((Einval, 0u), f.Ext((MmuextCmd.PinL1Table, t, 0)));
        Assert.Equal(PageType.None, f.Mm.Frames.TypeOf(t));
        f.Domain.Memory.Write32(((ulong)t << 12) + 8, (f.FreeMfn(1) << 12) | 3);
        Assert.Equal((0L, 1u), f.Ext((MmuextCmd.PinL1Table, t, 0)));
        Assert.Equal(PageType.Writable, f.Mm.Frames.TypeOf(f.FreeMfn(1)));
        Assert.Equal((0L, 1u), f.Ext((MmuextCmd.UnpinTable, t, 0)));
        Assert.Equal(0, f.Mm.Frames.TypeCount(f.FreeMfn(1)));                // devalidation released it
    }

    [Theory, InlineData(false), InlineData(true)]
    public void PinsAboveTheHypervisorLevelsAreIgnored(bool pae)
    {
        var f = new MmFixture(pae);
        Assert.Equal((0L, 1u), f.Ext((MmuextCmd.PinL4Table, 0xFFFFFFFF, 0)));
        if (!pae)
        {
            Assert.Equal((0L, 1u), f.Ext((MmuextCmd.PinL3Table, f.Top, 0))); // Linux 2.6.23's boot-time PIN_L3
            Assert.Equal((0L, 1u), f.Ext((MmuextCmd.PinL3Table, 0xFFFFFFFF, 0)));
        }
        else
            Assert.Equal((Einval, 0u), f.Ext((MmuextCmd.PinL3Table, f.Top, 0))); // already pinned at boot
    }

    [Theory, InlineData(false), InlineData(true)]
    public void NewBaseptrSwitchesTablesAndDropsTheOldRef(bool pae)
    {
        var f = new MmFixture(pae);
        uint copy = f.FreeMfn(0);
        var span = new byte[4096];
        f.Domain.Memory.ReadBytes((ulong)f.Top << 12, span);
        if (pae)
        {
            // A second L3 needs its own slot-3 L2: copy that too.
            uint l2Copy = f.FreeMfn(1);
            var l2 = new byte[4096];
            f.Domain.Memory.ReadBytes((ulong)f.Domain.XenSlotL2.Mfn << 12, l2);
            f.Domain.Memory.WriteBytes((ulong)l2Copy << 12, l2);
            BitConverter.TryWriteBytes(span.AsSpan(24), f.Entry(l2Copy, P));
        }
        f.Domain.Memory.WriteBytes((ulong)copy << 12, span);
        uint startInfo = f.Domain.StartInfoVa;
        Assert.True(f.CanTranslate(startInfo, Access.Read, false, out ulong before));
        Assert.Equal((0L, 1u), f.Ext((MmuextCmd.NewBaseptr, copy, 0)));
        Assert.Equal(copy << 12, f.Cpu.Cr3);
        Assert.Equal(copy, f.Mm.CurrentBaseMfn);
        Assert.Equal(1, f.Mm.Frames.TypeCount(copy));          // not pinned: the base ref only
        Assert.False(f.Mm.Frames.IsPinned(copy));
        Assert.Equal(1, f.Mm.Frames.TypeCount(f.Top));         // the old base keeps its pin only
        Assert.True(f.CanTranslate(startInfo, Access.Read, false, out ulong after));
        Assert.Equal(before, after);
        Assert.True(f.CanTranslate(f.Layout.MachToPhysVirtStart, Access.Read, false, out _)); // Xen slots filled
        // Back to the boot table through the privileged mov-cr3 path: the copy loses its last ref and is devalidated.
        Assert.True(f.Mm.NewBaseptr(f.Top));
        Assert.Equal(0, f.Mm.Frames.TypeCount(copy));
        Assert.False(f.Mm.Frames.IsValidated(copy));
        // A frame that cannot become a root table.
        Assert.False(f.Mm.NewBaseptr(f.MfnAt(f.SpareVa(0))));    // mapped RW
        Assert.Equal((Einval, 0u), f.Ext((MmuextCmd.NewBaseptr, f.Domain.M2PFirstMfn, 0)));
        Assert.Equal(f.Top, f.Mm.CurrentBaseMfn);
    }

    [Theory, InlineData(false), InlineData(true)]
    public void TlbFlushesAndInvlpgTakeEffect(bool pae)
    {
        var f = new MmFixture(pae);
        uint va = f.SpareVa(0);
        Assert.True(f.CanTranslate(va, Access.Read, false, out ulong pa0));
        // Change the PTE without a flush: the TLB still holds the old frame.
        Assert.Equal(0, f.Uvm(va, f.Entry(f.FreeMfn(0), P | A), Uvmf.None));
        Assert.True(f.CanTranslate(va, Access.Read, false, out ulong stale));
        Assert.Equal(pa0, stale);
        Assert.Equal((0L, 1u), f.Ext((MmuextCmd.InvlpgLocal, va, 0)));
        Assert.True(f.CanTranslate(va, Access.Read, false, out ulong fresh));
        Assert.Equal((ulong)f.FreeMfn(0) << 12, fresh);

        Assert.Equal(0, f.Uvm(va, f.Entry(f.FreeMfn(1), P | A), Uvmf.None));
        Assert.Equal((0L, 1u), f.Ext((MmuextCmd.TlbFlushLocal, 0, 0)));
        Assert.True(f.CanTranslate(va, Access.Read, false, out fresh));
        Assert.Equal((ulong)f.FreeMfn(1) << 12, fresh);

        // MULTI takes a vcpu bitmap pointer; an unreadable one is -EINVAL.
        Assert.True(f.Guest.TryWrite32(f.Args + 0x800, 1));
        Assert.Equal(0, f.Uvm(va, f.Entry(f.FreeMfn(2), P | A), Uvmf.None));
        Assert.Equal((0L, 1u), f.Ext((MmuextCmd.InvlpgMulti, va, f.Args + 0x800)));
        Assert.True(f.CanTranslate(va, Access.Read, false, out fresh));
        Assert.Equal((ulong)f.FreeMfn(2) << 12, fresh);
        Assert.Equal((0L, 2u), f.Ext((MmuextCmd.TlbFlushMulti, 0, f.Args + 0x800), (MmuextCmd.TlbFlushAll, 0, 0)));
        Assert.Equal((Einval, 1u), f.Ext((MmuextCmd.InvlpgAll, va, 0), (MmuextCmd.TlbFlushMulti, 0, 0x1000)));
        Assert.Equal((Einval, 0u), f.Ext((MmuextCmd.InvlpgMulti, va, f.Layout.HypervisorVirtStart)));
    }

    [Theory, InlineData(false), InlineData(true)]
    public void FlushCacheNeedsPrivilegeAndUnknownCommandsAreEnosys(bool pae)
    {
        var f = new MmFixture(pae);
        Assert.Equal((Einval, 0u), f.Ext((MmuextCmd.FlushCache, 0, 0)));
        Assert.Equal((0L, 1u), new MmFixture(pae, privileged: true).Ext((MmuextCmd.FlushCache, 0, 0)));
        Assert.Equal((-(long)Errno.ENOSYS, 1u), f.Ext((MmuextCmd.TlbFlushLocal, 0, 0), (14, 0, 0)));
        Assert.Equal((-(long)Errno.ENOSYS, 0u), f.Ext((MmuextCmd.NewUserBaseptr, f.Top, 0)));
        Assert.Equal((-(long)Errno.ENOSYS, 0u), f.Ext((99, 0, 0)));
        Assert.Equal((-(long)Errno.ESRCH, 0u), f.Ext(7, (MmuextCmd.TlbFlushLocal, 0, 0)));
        Assert.Equal(-Errno.EFAULT, f.Mm.MmuextOp(new(f.Layout.HypervisorVirtStart - 4, 1, f.DonePtr, Self, 0, 0)));
        Assert.Equal(-Errno.EFAULT, f.Mm.MmuextOp(new(0x1000, 1, f.DonePtr, Self, 0, 0)));
    }

    [Theory, InlineData(false), InlineData(true)]
    public void SetLdtChecksItsArgumentsAndLoadsLdtr(bool pae)
    {
        var f = new MmFixture(pae);
        uint hvs = f.Layout.HypervisorVirtStart;
        Assert.Equal((Einval, 0u), f.Ext((MmuextCmd.SetLdt, 0xC0000010, 1)));
        Assert.Equal((Einval, 0u), f.Ext((MmuextCmd.SetLdt, 0xC0000000, 8193)));
        Assert.Equal((Einval, 0u), f.Ext((MmuextCmd.SetLdt, hvs - 0x1000, 513)));
        Assert.Equal((0L, 1u), f.Ext((MmuextCmd.SetLdt, hvs - 0x1000, 512)));
        Assert.Equal((0L, 1u), f.Ext((MmuextCmd.SetLdt, 0xC0000000, 8192)));
        Assert.Equal(0xC0000000u, f.Mm.LdtBase);
        Assert.Equal(8192u, f.Mm.LdtEntries);
        Assert.Equal(f.Mm.LdtShadowBase, f.Cpu.Ldtr.Base);
        Assert.Equal(8192u * 8 - 1, f.Cpu.Ldtr.Limit);
        Assert.Equal(0xE048, f.Cpu.Ldtr.Selector);
        Assert.Equal(0x82, f.Cpu.Ldtr.Attr & 0xFF);
        Assert.Equal((0L, 1u), f.Ext((MmuextCmd.SetLdt, 0, 0)));
        Assert.False(f.Cpu.Ldtr.Present);
    }
}
