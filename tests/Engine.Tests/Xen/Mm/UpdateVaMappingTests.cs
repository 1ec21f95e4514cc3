using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Xen;
using Replayvisor.Engine.Xen.Mm;
using static Replayvisor.Engine.Tests.Xen.Mm.MmFixture;

namespace Replayvisor.Engine.Tests.Xen.Mm;

public class UpdateVaMappingTests
{
    private const long Einval = -Errno.EINVAL;

    [Theory, InlineData(false), InlineData(true)]
    public void MapsThroughTheCurrentTablesWithMmuUpdateChecks(bool pae)
    {
        var f = new MmFixture(pae);
        uint va = f.SpareVa(0), mfn = f.FreeMfn(0);
        Assert.Equal(0, f.Uvm(va, f.Entry(mfn, P | RW | A), Uvmf.TlbFlush | Uvmf.All));
        Assert.True(f.CanTranslate(va, Access.Write, false, out ulong pa));
        Assert.Equal((ulong)mfn << 12, pa);
        Assert.Equal(Einval, f.Uvm(f.Layout.HypervisorVirtStart, f.Entry(mfn, P | A)));
        Assert.Equal(Einval, f.Uvm(0xFFFFF000, 0));
        Assert.Equal(Einval, f.Uvm(f.UnmappedVa, f.Entry(mfn, P | A)));             // no L1 there
        Assert.Equal(Einval, f.Uvm(va, f.Entry(f.Top, P | RW | A)));                // writable page table
        Assert.Equal(Einval, f.Uvm(va, f.Entry(f.Domain.M2PFirstMfn, P | A)));      // Xen's frame
        Assert.Equal(Einval, f.Uvm(va, f.Entry(mfn, P | RW | A | 0x100)));          // GLOBAL
        Assert.Equal(0, f.Uvm(va, 0, Uvmf.Invlpg));
        Assert.False(f.CanTranslate(va, Access.Read, false, out _));
        Assert.Equal(0, f.Mm.Frames.TypeCount(mfn));
    }

    [Theory, InlineData(false), InlineData(true)]
    public void VcpuBitmapPointer(bool pae)
    {
        var f = new MmFixture(pae);
        uint va = f.SpareVa(0);
        Assert.True(f.Guest.TryWrite32(f.Args + 0x100, 1));
        Assert.Equal(0, f.Uvm(va, f.Entry(f.FreeMfn(0), P | A), Uvmf.Invlpg | (f.Args + 0x100)));
        Assert.True(f.CanTranslate(va, Access.Read, false, out ulong pa));
        Assert.Equal((ulong)f.FreeMfn(0) << 12, pa);
        // An unreadable bitmap: -EFAULT, though the update itself was made.
        Assert.Equal(-Errno.EFAULT, f.Uvm(va, f.Entry(f.FreeMfn(1), P | A), Uvmf.TlbFlush | 0x1000));
        Assert.Equal(f.FreeMfn(1), f.MfnAt(va));
    }

    [Theory, InlineData(false), InlineData(true)]
    public void OtherDomainNeedsPrivilegeAndSelf(bool pae)
    {
        var f = new MmFixture(pae);
        uint va = f.SpareVa(0);
        ulong pte = f.Entry(f.FreeMfn(0), P | A);
        var args = new HypercallArgs(va, (uint)pte, 0, Uvmf.Invlpg, Self, 0);
        Assert.Equal(-Errno.EPERM, f.Mm.UpdateVaMappingOtherdomain(args, privileged: false));
        Assert.Equal(-Errno.ESRCH, f.Mm.UpdateVaMappingOtherdomain(args with { A5 = 3 }, privileged: true));
        Assert.Equal(0, f.Mm.UpdateVaMappingOtherdomain(args, privileged: true));
        Assert.Equal(f.FreeMfn(0), f.MfnAt(va));
    }

    [Fact]
    public void NonPaeIgnoresTheHighWord()
    {
        var f = new MmFixture(false);
        uint va = f.SpareVa(0);
        Assert.Equal(0, f.Mm.UpdateVaMapping(new(va, (uint)f.Entry(f.FreeMfn(0), P | A), 0xFFFFFFFF, Uvmf.Invlpg, 0, 0)));
        Assert.Equal(f.FreeMfn(0), f.MfnAt(va));
    }
}
