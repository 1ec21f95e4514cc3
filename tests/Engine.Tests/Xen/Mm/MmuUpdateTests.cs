using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Xen;
using Replayvisor.Engine.Xen.Mm;
using static Replayvisor.Engine.Tests.Xen.Mm.MmFixture;

namespace Replayvisor.Engine.Tests.Xen.Mm;

public class MmuUpdateTests
{
    private const long Einval = -Errno.EINVAL;

    [Theory, InlineData(false), InlineData(true)]
    public void L1UpdateMapsAFrameAndMovesTheWritableRef(bool pae)
    {
        var f = new MmFixture(pae);
        uint va = f.SpareVa(0), oldMfn = f.MfnAt(va), mfn = f.FreeMfn(0);
        Assert.Equal(1, f.Mm.Frames.TypeCount(oldMfn));
        Assert.Equal((0L, 1u), f.Mmu((f.L1eMaddr(va), f.Entry(mfn, P | RW | A))));
        Assert.Equal(PageType.Writable, f.Mm.Frames.TypeOf(mfn));
        Assert.Equal(1, f.Mm.Frames.TypeCount(mfn));
        Assert.Equal(0, f.Mm.Frames.TypeCount(oldMfn));
        f.Cpu.FlushTlb();
        Assert.True(f.CanTranslate(va, Access.Write, false, out ulong pa));
        Assert.Equal((ulong)mfn << 12, pa);
        // Read-only: a plain ref, no writable type.
        Assert.Equal((0L, 1u), f.Mmu((f.L1eMaddr(va), f.Entry(mfn, P | A))));
        Assert.Equal(0, f.Mm.Frames.TypeCount(mfn));
        // Not present: always accepted, other bits ignored.
        Assert.Equal((0L, 1u), f.Mmu((f.L1eMaddr(va), 0xFFFF_F180ul)));
    }

    [Theory]
    [InlineData(false, 0x80ul)] [InlineData(false, 0x100ul)]
    [InlineData(true, 0x80ul)] [InlineData(true, 0x100ul)] [InlineData(true, 1ul << 44)] [InlineData(true, 1ul << 62)]
    public void L1DisallowedFlagsAreRefused(bool pae, ulong bad)
    {
        var f = new MmFixture(pae);
        uint va = f.SpareVa(0);
        Assert.Equal((Einval, 0u), f.Mmu((f.L1eMaddr(va), f.Entry(f.FreeMfn(0), P | RW | A) | bad)));
    }

    [Fact]
    public void PaeNxIsAllowedInL1()
    {
        var f = new MmFixture(true);
        Assert.Equal((0L, 1u), f.Mmu((f.L1eMaddr(f.SpareVa(0)), f.Entry(f.FreeMfn(0), P | RW | A) | (1ul << 63))));
    }

    [Theory, InlineData(false), InlineData(true)]
    public void L1TargetMustBeOwnedByTheDomain(bool pae)
    {
        var f = new MmFixture(pae);
        ulong pte = f.L1eMaddr(f.SpareVa(0));
        Assert.Equal((Einval, 0u), f.Mmu((pte, f.Entry(f.Domain.M2PFirstMfn, P | A))));          // Xen's M2P frame
        Assert.Equal((Einval, 0u), f.Mmu((pte, f.Entry(f.Domain.Frames.TotalFrames + 5, P | A)))); // past RAM, unprivileged
        Assert.Equal((0L, 1u), f.Mmu((pte, f.Entry(f.Domain.SharedInfoMfn, P | RW | A))));        // shared_info is the domain's
        var dom0 = new MmFixture(pae, privileged: true);
        Assert.Equal((0L, 1u), dom0.Mmu((dom0.L1eMaddr(dom0.SpareVa(0)), dom0.Entry(dom0.Domain.Frames.TotalFrames + 5, P | RW | A))));
    }

    [Theory, InlineData(false), InlineData(true)]
    public void PageTableFramesCannotBeMappedWritable(bool pae)
    {
        var f = new MmFixture(pae);
        ulong pte = f.L1eMaddr(f.SpareVa(0));
        uint l1 = f.L1Of(f.SpareVa(0)).L1Mfn;
        Assert.Equal((Einval, 0u), f.Mmu((pte, f.Entry(f.Top, P | RW | A))));
        Assert.Equal((Einval, 0u), f.Mmu((pte, f.Entry(l1, P | RW | A))));
        Assert.Equal((0L, 1u), f.Mmu((pte, f.Entry(l1, P | A)))); // read-only is fine
    }

    [Theory, InlineData(false), InlineData(true)]
    public void StopsAtTheFirstFailureAndReportsDone(bool pae)
    {
        var f = new MmFixture(pae);
        ulong a = f.L1eMaddr(f.SpareVa(0)), b = f.L1eMaddr(f.SpareVa(1)), c = f.L1eMaddr(f.SpareVa(2));
        var r = f.Mmu((a, f.Entry(f.FreeMfn(0), P | RW | A)), (b, f.Entry(f.Top, P | RW | A)), (c, f.Entry(f.FreeMfn(1), P | RW | A)));
        Assert.Equal((Einval, 1u), r);
        Assert.Equal(f.Entry(f.FreeMfn(0), P | RW | A), f.ReadEntryAt(a));
        Assert.NotEqual(f.FreeMfn(1), (uint)(f.ReadEntryAt(c) >> 12));
        // Unknown command (ptr low bits 3) → -ENOSYS.
        Assert.Equal((-(long)Errno.ENOSYS, 1u), f.Mmu((a, f.Entry(f.FreeMfn(0), P | A)), (b | 3, 0)));
        // An invalid frame address.
        Assert.Equal((Einval, 0u), f.Mmu(((ulong)f.Domain.Frames.TotalFrames << 12, 0)));
        // A Xen frame is not the domain's to update.
        Assert.Equal((Einval, 0u), f.Mmu(((ulong)f.Domain.M2PFirstMfn << 12, 0)));
    }

    [Theory, InlineData(false), InlineData(true)]
    public void BadRequestArraysAndForeignDomains(bool pae)
    {
        var f = new MmFixture(pae);
        long rc = f.Mm.MmuUpdate(new(f.Layout.HypervisorVirtStart - 8, 1, f.DonePtr, Self, 0, 0));
        Assert.Equal(-Errno.EFAULT, rc);
        Assert.True(f.Guest.TryRead32(f.DonePtr, out uint done));
        Assert.Equal(0u, done);
        Assert.Equal(-Errno.EFAULT, f.Mm.MmuUpdate(new(0x1000, 1, f.DonePtr, Self, 0, 0))); // unmapped
        Assert.Equal((-(long)Errno.ESRCH, 0u), f.Mmu(5, (f.L1eMaddr(f.SpareVa(0)), 0)));
        Assert.Equal((-(long)Errno.ESRCH, 0u), f.Mmu(DomId.Xen, (f.L1eMaddr(f.SpareVa(0)), 0)));
        Assert.Equal((0L, 0u), f.Mmu(DomId.Io));
        // With DOMID_IO as the foreign domain a RAM frame cannot be mapped.
        Assert.Equal((Einval, 0u), f.Mmu(DomId.Io, (f.L1eMaddr(f.SpareVa(0)), f.Entry(f.FreeMfn(0), P | A))));
        // The initial domain may map I/O memory (past RAM) through DOMID_IO, without refs.
        var dom0 = new MmFixture(pae, privileged: true);
        Assert.Equal((0L, 1u), dom0.Mmu(DomId.Io, (dom0.L1eMaddr(dom0.SpareVa(0)), dom0.Entry(dom0.Domain.Frames.TotalFrames + 1, P | RW | A))));
        // A null done pointer is allowed.
        Assert.Equal(0, f.Mm.MmuUpdate(new(f.Args, 0, 0, Self, 0, 0)));
    }

    [Theory, InlineData(false), InlineData(true)]
    public void PreemptedCountResumesTheDoneCounter(bool pae)
    {
        var f = new MmFixture(pae);
        Assert.True(f.Guest.TryWrite64(f.Args, f.L1eMaddr(f.SpareVa(0))));
        Assert.True(f.Guest.TryWrite64(f.Args + 8, f.Entry(f.FreeMfn(0), P | A)));
        Assert.True(f.Guest.TryWrite32(f.DonePtr, 5));
        Assert.Equal(0, f.Mm.MmuUpdate(new(f.Args, 1 | MmuCmd.UpdatePreempted, f.DonePtr, Self, 0, 0)));
        Assert.True(f.Guest.TryRead32(f.DonePtr, out uint done));
        Assert.Equal(6u, done);
    }

    [Theory, InlineData(false), InlineData(true)]
    public void L2UpdateTypesANewL1AndRejectsXenSlotsAndSuperpages(bool pae)
    {
        var f = new MmFixture(pae);
        uint l1 = f.FreeMfn(0), page = f.FreeMfn(1);
        f.InstallL1AtUnmapped(l1);
        Assert.Equal(PageType.L1, f.Mm.Frames.TypeOf(l1));
        Assert.True(f.Mm.Frames.IsValidated(l1));
        // Map a page through it with update_va_mapping, then read it through the CPU.
        f.Map(f.UnmappedVa, page, P | RW | A);
        f.Domain.Memory.Write32((ulong)page << 12, 0x12345678);
        Assert.Equal(0x12345678ul, f.Cpu.ReadSystem(f.UnmappedVa, 4));
        // The L1 is now a page table: no writable mapping of it.
        Assert.Equal(Einval, f.Uvm(f.SpareVa(0), f.Entry(l1, P | RW | A)));
        // PSE in an L2 entry.
        ulong l2e = f.L2eMaddr(f.UnmappedVa + (pae ? 0x200000u : 0x400000u));
        Assert.Equal((Einval, 0u), f.Mmu((l2e, f.Entry(f.FreeMfn(2), P | RW | A | 0x80))));
        // Xen's slots: non-PAE ≥ 1008 of any L2; PAE ≥ 428 of the slot-3 L2.
        uint xenL2 = f.Domain.XenSlotL2.Mfn;
        ulong xenSlot = ((ulong)xenL2 << 12) + (ulong)(f.Layout.FirstXenL2Slot * f.PteSize);
        Assert.Equal((Einval, 0u), f.Mmu((xenSlot, f.Entry(f.FreeMfn(2), P | RW | A))));
        Assert.Equal((Einval, 0u), f.Mmu((xenSlot, 0)));
        // A guest slot pointing at a Xen L1 (the M2P's) is refused: Xen frames are never reachable.
        Assert.Equal((Einval, 0u), f.Mmu((l2e, f.ReadEntryAt(xenSlot))));
        // Dropping the L2 entry devalidates the unpinned L1 and releases its mappings' refs.
        Assert.Equal(1, f.Mm.Frames.TypeCount(page));
        Assert.Equal((0L, 1u), f.Mmu((f.L2eMaddr(f.UnmappedVa), 0)));
        Assert.Equal(0, f.Mm.Frames.TypeCount(l1));
        Assert.False(f.Mm.Frames.IsValidated(l1));
        Assert.Equal(0, f.Mm.Frames.TypeCount(page));
    }

    [Theory, InlineData(false), InlineData(true)]
    public void LinearPageTablesMustBeReadOnlySameLevelAndValidated(bool pae)
    {
        var f = new MmFixture(pae);
        uint l2 = pae ? (uint)f.Fmt.Mfn(f.Fmt.Read(f.Top, 3)) : f.Top;
        ulong slot = f.L2eMaddr(f.UnmappedVa);
        Assert.Equal((Einval, 0u), f.Mmu((slot, f.Entry(l2, P | RW | A))));  // writable
        Assert.Equal((0L, 1u), f.Mmu((slot, f.Entry(l2, P | A))));           // self-reference: read-only
        // The L1s become readable through it: page i of the window is the L1 that L2 entry i points to.
        int i0 = f.Fmt.L2Index(f.Domain.Virtual.VirtBase);
        uint firstL1 = (uint)f.Fmt.Mfn(f.Fmt.Read(l2, i0));
        uint window = f.UnmappedVa + (uint)i0 * 0x1000;
        f.Cpu.FlushTlb();
        Assert.Equal(f.Fmt.Read(firstL1, 0) & 0xFFFFFFFF, f.Cpu.ReadSystem(window, 4));
        Assert.False(f.CanTranslate(window, Access.Write, false, out _));
        Assert.Equal((0L, 1u), f.Mmu((slot, 0)));
        // A frame that is neither a valid L1 nor an already validated L2 is refused; once validated as an L2 (pinned), accepted.
        uint other = f.FreeMfn(3), pinnedL1 = f.FreeMfn(4);
        Assert.Equal((0L, 1u), f.Ext((MmuextCmd.PinL1Table, pinnedL1, 0)));
        f.Domain.Memory.Write32((ulong)other << 12, (pinnedL1 << 12) | (uint)(P | RW | A)); // as an L1: a writable map of a table
        Assert.Equal((Einval, 0u), f.Mmu((slot, f.Entry(other, P | A))));
        Assert.Equal((0L, 1u), f.Ext((MmuextCmd.PinL2Table, other, 0)));
        Assert.Equal((0L, 1u), f.Mmu((slot, f.Entry(other, P | A))));
        Assert.Equal(2, f.Mm.Frames.TypeCount(other));
        Assert.Equal((0L, 1u), f.Mmu((slot, 0)));
        Assert.Equal(1, f.Mm.Frames.TypeCount(other));
    }

    [Fact]
    public void PaeL3RulesMustBeZeroBitsSlot3AndNewL2s()
    {
        var f = new MmFixture(true);
        ulong l3 = (ulong)f.Top << 12;
        uint l2 = f.FreeMfn(0);
        Assert.Equal((Einval, 0u), f.Mmu((l3 + 24, f.Fmt.Read(f.Top, 3))));      // slot 3: never after validation
        Assert.Equal((Einval, 0u), f.Mmu((l3 + 24, 0)));
        Assert.Equal((Einval, 0u), f.Mmu((l3, f.Entry(l2, P | RW))));            // RW is must-be-zero
        Assert.Equal((Einval, 0u), f.Mmu((l3, f.Entry(l2, P) | (1ul << 63))));  // so is NX
        Assert.Equal((0L, 1u), f.Mmu((l3, f.Entry(l2, P))));
        Assert.Equal(PageType.L2, f.Mm.Frames.TypeOf(l2));
        Assert.False(f.Mm.Frames.IsXenPrivate(l2));
        // The Xen-private slot-3 L2 cannot also be used in slots 0–2.
        Assert.Equal((Einval, 0u), f.Mmu((l3 + 8, f.Fmt.Read(f.Top, 3))));
        Assert.Equal((0L, 1u), f.Mmu((l3, 0)));
        Assert.Equal(0, f.Mm.Frames.TypeCount(l2));
    }

    [Fact]
    public void PaeL3NeedsSlot3AndItMustNotBeShared()
    {
        var f = new MmFixture(true);
        uint newL3 = f.FreeMfn(0), xenL2 = f.FreeMfn(1);
        // Slot 3 empty → the L3 does not validate.
        Assert.Equal((Einval, 0u), f.Ext((MmuextCmd.PinL3Table, newL3, 0)));
        // Slot 3 pointing at the boot L3's slot-3 L2 (already in use there) → shared → refused.
        f.Domain.Memory.Write64(((ulong)newL3 << 12) + 24, f.Fmt.Read(f.Top, 3));
        Assert.Equal((Einval, 0u), f.Ext((MmuextCmd.PinL3Table, newL3, 0)));
        // Its own L2: validates, Xen fills the slots ≥ 428.
        f.Domain.Memory.Write64(((ulong)newL3 << 12) + 24, f.Entry(xenL2, P));
        Assert.Equal((0L, 1u), f.Ext((MmuextCmd.PinL3Table, newL3, 0)));
        Assert.True(f.Mm.Frames.IsXenPrivate(xenL2));
        Assert.Equal(f.Fmt.Read(f.Domain.XenSlotL2.Mfn, 428), f.Fmt.Read(xenL2, 428));
        Assert.NotEqual(0ul, f.Fmt.Read(xenL2, 428));
    }

    [Theory, InlineData(false), InlineData(true)]
    public void MachphysUpdateWritesTheM2P(bool pae)
    {
        var f = new MmFixture(pae);
        uint mfn = f.FreeMfn(0);
        Assert.Equal((0L, 1u), f.Mmu((((ulong)mfn << 12) | 1, 0x4242)));
        Assert.Equal(0x4242ul, f.Cpu.ReadSystem(f.Layout.MachToPhysVirtStart + mfn * 4, 4));
        Assert.Equal((Einval, 0u), f.Mmu((((ulong)f.Domain.M2PFirstMfn << 12) | 1, 7)));
    }

    [Theory, InlineData(false), InlineData(true)]
    public void PreserveAdKeepsAccessedAndDirty(bool pae)
    {
        var f = new MmFixture(pae);
        ulong pte = f.L1eMaddr(f.SpareVa(0));
        Assert.Equal((0L, 1u), f.Mmu((pte, f.Entry(f.FreeMfn(0), P | RW | A | D))));
        Assert.Equal((0L, 1u), f.Mmu((pte | 2, f.Entry(f.FreeMfn(0), P | RW))));
        Assert.Equal(f.Entry(f.FreeMfn(0), P | RW | A | D), f.ReadEntryAt(pte));
        Assert.Equal((0L, 1u), f.Mmu((pte, f.Entry(f.FreeMfn(0), P | RW))));
        Assert.Equal(f.Entry(f.FreeMfn(0), P | RW), f.ReadEntryAt(pte));
    }

    [Theory, InlineData(false), InlineData(true)]
    public void NonTableFramesTakeAPlainStoreButNotDescriptorPages(bool pae)
    {
        var f = new MmFixture(pae);
        uint data = f.FreeMfn(0);
        Assert.Equal((0L, 1u), f.Mmu((((ulong)data << 12) + 0x10, 0x1122334455667788ul)));
        Assert.Equal(pae ? 0x1122334455667788ul : 0x55667788ul, f.Domain.Memory.Read64(((ulong)data << 12) + 0x10));
        Assert.Equal(0, f.Mm.Frames.TypeCount(data));
        Assert.Equal(0, f.Mm.SetGdt(new(WriteList(f, data), 1, 0, 0, 0, 0)));
        Assert.Equal((Einval, 0u), f.Mmu((((ulong)data << 12) + 0x10, 0)));
    }

    internal static uint WriteList(MmFixture f, params uint[] mfns)
    {
        uint at = f.Args + 0x400;
        for (int i = 0; i < mfns.Length; i++) Assert.True(f.Guest.TryWrite32(at + (uint)i * 4, mfns[i]));
        return at;
    }
}
