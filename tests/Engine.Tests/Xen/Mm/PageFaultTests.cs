using Iced.Intel;
using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Tests.Cpu;
using Replayvisor.Engine.Xen.Mm;
using static Iced.Intel.AssemblerRegisters;
using static Replayvisor.Engine.Tests.Xen.Mm.MmFixture;

namespace Replayvisor.Engine.Tests.Xen.Mm;

public class PageFaultTests
{
    /// <summary>The VA at which the boot tables map an L1 frame read-only.</summary>
    private static uint TableVa(MmFixture f, uint mfn) => f.Domain.Virtual.VirtBase + f.Domain.Frames.MfnToPfn(mfn) * 4096;

    /// <summary>The read-only alias of the PTE that maps SpareVa(0).</summary>
    private static uint PteAlias(MmFixture f, uint va)
    {
        var s = f.L1Of(va);
        return TableVa(f, s.L1Mfn) + (uint)(s.Index * f.PteSize);
    }

    /// <summary>Places code at SpareVa(5), runs one instruction at ring 1, returns the #PF it raised.</summary>
    private static CpuEvent RunFaulting(MmFixture f, Action<Assembler> code)
    {
        uint at = f.SpareVa(5);
        byte[] bytes = TestMachine.Assemble(code, at);
        Assert.True(f.Guest.TryWrite(at, bytes));
        f.Cpu.Eip = at;
        f.Host.Events.Clear();
        f.Cpu.Step();
        var e = Assert.Single(f.Host.Events);
        Assert.Equal(Vectors.PF, e.Vector);
        return e;
    }

    /// <summary>
    /// Places code at SpareVa(5) with EIP on it and returns the #PF a write to <paramref name="cr2"/> raises,
    /// for instructions this CPU does not execute yet (cmpxchg, cmpxchg8b): Xen only sees the fault.
    /// </summary>
    private static CpuEvent Place(MmFixture f, uint cr2, Action<Assembler> code)
    {
        uint at = f.SpareVa(5);
        Assert.True(f.Guest.TryWrite(at, TestMachine.Assemble(code, at)));
        f.Cpu.Eip = at;
        return new CpuEvent(Vectors.PF, EventKind.Fault, true, PfErr.P | PfErr.W, at, cr2);
    }

    private static MmFixture Ptwr(bool pae)
    {
        var f = new MmFixture(pae);
        Assert.Equal(0, f.Mm.VmAssistOp(Vmasst.CmdEnable, Vmasst.WritablePagetables));
        return f;
    }

    [Theory, InlineData(false), InlineData(true)]
    public void PtwrEmulatesAValidPteStore(bool pae)
    {
        var f = Ptwr(pae);
        uint va = f.SpareVa(0), alias = PteAlias(f, va);
        ulong pte = f.Entry(f.FreeMfn(0), P | RW | A);
        f.Cpu.Ebx = alias;
        f.Cpu.Eax = (uint)pte;
        f.Cpu.Edx = (uint)(pte >> 32);
        var e = RunFaulting(f, a => { if (pae) a.mov(__dword_ptr[ebx + 4], edx); else a.mov(__dword_ptr[ebx], eax); });
        Assert.Equal(alias + (pae ? 4u : 0u), e.Cr2);
        Assert.Equal(PfErr.P | PfErr.W, e.ErrorCode);
        ulong icount = f.Cpu.Icount;
        var r = f.Mm.HandlePageFault(e.Cr2, e.ErrorCode, f.Cpu.Cpl);
        Assert.True(r.Handled);
        Assert.Equal(f.SpareVa(5) + (pae ? 3u : 2u), f.Cpu.Eip);
        Assert.Equal(icount + 1, f.Cpu.Icount);
        if (pae)
        {
            // High half first (0 here), then the low half: merged with the other half each time.
            e = RunFaulting(f, a => a.mov(__dword_ptr[ebx], eax));
            Assert.True(f.Mm.HandlePageFault(e.Cr2, e.ErrorCode, 1).Handled);
        }
        Assert.Equal(pte, f.L1Of(va).Entry);
        Assert.Equal(1, f.Mm.Frames.TypeCount(f.FreeMfn(0)));
        f.Cpu.InvalidatePage(va);
        Assert.True(f.CanTranslate(va, Access.Write, false, out ulong pa));
        Assert.Equal((ulong)f.FreeMfn(0) << 12, pa);
    }

    [Theory, InlineData(false), InlineData(true)]
    public void PtwrBouncesWhatXenWouldNotEmulate(bool pae)
    {
        var f = Ptwr(pae);
        uint va = f.SpareVa(0), alias = PteAlias(f, va);
        ulong before = f.L1Of(va).Entry;
        f.Cpu.Ebx = alias;

        f.Cpu.Eax = (uint)f.Entry(f.Domain.M2PFirstMfn, P | A);       // maps a Xen frame: invalid
        var e = RunFaulting(f, a => a.mov(__dword_ptr[ebx], eax));
        Assert.Equal(new PageFaultOutcome(false, alias), f.Mm.HandlePageFault(e.Cr2, e.ErrorCode, 1));
        Assert.Equal(f.SpareVa(5), f.Cpu.Eip);

        f.Cpu.Eax = (uint)f.Entry(f.FreeMfn(0), P | A);                // valid, but:
        Assert.False(f.Mm.HandlePageFault(e.Cr2, e.ErrorCode, 3).Handled);                 // ring 3
        Assert.False(f.Mm.HandlePageFault(e.Cr2, PfErr.P, 1).Handled);                     // a read
        e = RunFaulting(f, a => a.mov(__dword_ptr[ebx + 1], eax));                        // misaligned
        Assert.False(f.Mm.HandlePageFault(e.Cr2, e.ErrorCode, 1).Handled);
        e = Place(f, alias, a => a.fistp(__dword_ptr[ebx]));                              // not an emulated instruction
        Assert.False(f.Mm.HandlePageFault(e.Cr2, e.ErrorCode, 1).Handled);
        f.Cpu.Eip = f.SpareVa(5);
        e = RunFaulting(f, a => a.mov(__dword_ptr[ebx], eax));
        Assert.Equal(0, f.Mm.VmAssistOp(Vmasst.CmdDisable, Vmasst.WritablePagetables));
        Assert.False(f.Mm.HandlePageFault(e.Cr2, e.ErrorCode, 1).Handled);                // vm_assist off
        Assert.Equal(0, f.Mm.VmAssistOp(Vmasst.CmdEnable, Vmasst.WritablePagetables));
        Assert.Equal(before, f.L1Of(va).Entry);

        // Writes to the top-level table are never emulated.
        f.Cpu.Ebx = TableVa(f, f.Top);
        e = RunFaulting(f, a => a.mov(__dword_ptr[ebx], eax));
        Assert.Equal(new PageFaultOutcome(false, f.Cpu.Ebx), f.Mm.HandlePageFault(e.Cr2, e.ErrorCode, 1));
        // An L1 frame no longer in use as an L1 (type count 0) is not emulated either.
        uint l1 = f.FreeMfn(1);
        Assert.Equal((0L, 1u), f.Ext((MmuextCmd.PinL1Table, l1, 0)));
        Assert.Equal((0L, 1u), f.Ext((MmuextCmd.UnpinTable, l1, 0)));
        f.Map(f.SpareVa(2), l1, P | A);
        f.Cpu.Ebx = f.SpareVa(2);
        e = RunFaulting(f, a => a.mov(__dword_ptr[ebx], eax));
        Assert.False(f.Mm.HandlePageFault(e.Cr2, e.ErrorCode, 1).Handled);
    }

    [Theory, InlineData(false), InlineData(true)]
    public void PtwrCmpxchgAndXchg(bool pae)
    {
        var f = Ptwr(pae);
        uint va = f.SpareVa(0), alias = PteAlias(f, va);
        ulong cur = f.L1Of(va).Entry;
        ulong pte = f.Entry(f.FreeMfn(0), P | RW | A);
        f.Cpu.Ebx = alias;
        // Compare fails: no store, the accumulator receives the current value, ZF clear.
        f.Cpu.Eax = 0x1234;
        f.Cpu.Ecx = (uint)pte;
        var e = Place(f, alias, a => a.@lock.cmpxchg(__dword_ptr[ebx], ecx));
        Assert.True(f.Mm.HandlePageFault(e.Cr2, e.ErrorCode, 1).Handled);
        Assert.Equal((uint)cur, f.Cpu.Eax);
        Assert.False(f.Cpu.ZF);
        Assert.Equal(cur, f.L1Of(va).Entry);
        // Compare succeeds (EAX now holds the current value): validated store, ZF set.
        e = Place(f, alias, a => a.@lock.cmpxchg(__dword_ptr[ebx], ecx));
        Assert.True(f.Mm.HandlePageFault(e.Cr2, e.ErrorCode, 1).Handled);
        Assert.True(f.Cpu.ZF);
        Assert.Equal((cur & ~0xFFFFFFFFul) | (uint)pte, f.L1Of(va).Entry);
        // xchg clears the entry and returns the old one.
        f.Cpu.Edx = 0;
        e = RunFaulting(f, a => a.xchg(__dword_ptr[ebx], edx));
        Assert.True(f.Mm.HandlePageFault(e.Cr2, e.ErrorCode, 1).Handled);
        Assert.Equal((uint)pte, f.Cpu.Edx);
        Assert.Equal(pae ? cur & ~0xFFFFFFFFul : 0ul, f.L1Of(va).Entry);
        Assert.Equal(0, f.Mm.Frames.TypeCount(f.FreeMfn(0)));
        // Read-modify-write forms: lock bts sets P back (CF = old bit 0), lock btr clears RW.
        f.Domain.Memory.Write32(f.L1eMaddr(va), (uint)f.Entry(f.FreeMfn(0), RW | A));
        e = Place(f, alias, a => a.@lock.bts(__dword_ptr[ebx], 0));
        Assert.True(f.Mm.HandlePageFault(e.Cr2, e.ErrorCode, 1).Handled);
        Assert.False(f.Cpu.CF);
        Assert.Equal(1, f.Mm.Frames.TypeCount(f.FreeMfn(0)));
        e = Place(f, alias, a => a.@lock.btr(__dword_ptr[ebx], 1));
        Assert.True(f.Mm.HandlePageFault(e.Cr2, e.ErrorCode, 1).Handled);
        Assert.True(f.Cpu.CF);
        Assert.Equal((uint)f.Entry(f.FreeMfn(0), P | A), (uint)f.L1Of(va).Entry);
        Assert.Equal(0, f.Mm.Frames.TypeCount(f.FreeMfn(0)));
    }

    [Fact]
    public void PtwrPaeUpperHalfSpecialCaseAndCmpxchg8b()
    {
        var f = Ptwr(true);
        uint va = f.SpareVa(0), alias = PteAlias(f, va);
        ulong cur = f.L1Of(va).Entry;
        f.Cpu.Ebx = alias;
        // An invalid upper half (bit 52 set) of a present PTE: accepted with P cleared.
        f.Cpu.Eax = 0x00100000;
        var e = RunFaulting(f, a => a.mov(__dword_ptr[ebx + 4], eax));
        Assert.True(f.Mm.HandlePageFault(e.Cr2, e.ErrorCode, 1).Handled);
        Assert.Equal(((ulong)0x00100000 << 32) | (cur & 0xFFFFFFFF & ~P), f.L1Of(va).Entry);
        Assert.Equal(0, f.Mm.Frames.TypeCount((uint)(cur >> 12))); // the old mapping's ref went
        // The same as a locked cmpxchg is refused.
        ulong now = f.L1Of(va).Entry;
        ulong pte = f.Entry(f.FreeMfn(0), P | RW | A) | (1ul << 63);
        f.Cpu.Eax = (uint)now; f.Cpu.Edx = (uint)(now >> 32);
        f.Cpu.Ebx = (uint)pte; f.Cpu.Ecx = (uint)(pte >> 32);
        f.Cpu.Esi = alias;
        e = Place(f, alias, a => a.@lock.cmpxchg8b(__qword_ptr[esi]));
        Assert.True(f.Mm.HandlePageFault(e.Cr2, e.ErrorCode, 1).Handled);
        Assert.True(f.Cpu.ZF);
        Assert.Equal(pte, f.L1Of(va).Entry);
        Assert.Equal(1, f.Mm.Frames.TypeCount(f.FreeMfn(0)));
    }

    [Theory, InlineData(false), InlineData(true)]
    public void LazyLdtMappingTakesTheLdtTypeOnFirstUse(bool pae)
    {
        var f = new MmFixture(pae);
        uint ldtVa = f.SpareVa(3), ldtMfn = f.FreeMfn(3);
        f.Domain.Memory.Write64(((ulong)ldtMfn << 12) + 8, 0x00CF_9200_0000_FFFFul); // flat DPL0 data
        f.Map(ldtVa, ldtMfn, P | A);
        Assert.Equal((0L, 1u), f.Ext((MmuextCmd.SetLdt, ldtVa, 16)));
        // The CPU's descriptor read faults in the shadow area.
        f.Cpu.ReadSystem(f.Cpu.Ldtr.Base + 8, 8);
        Assert.True(f.Cpu.Faulted);
        var e = f.Cpu.PendingEvent;
        f.Cpu.ClearFault();
        Assert.Equal(f.Mm.LdtShadowBase + 8, e.Cr2);
        Assert.True(f.Mm.HandlePageFault(e.Cr2, e.ErrorCode, 1).Handled);
        Assert.Equal(PageType.LdtPage, f.Mm.Frames.TypeOf(ldtMfn));
        Assert.Equal(1, f.Mm.Frames.TypeCount(ldtMfn));
        ulong d = f.Cpu.ReadSystem(f.Mm.LdtShadowBase + 8, 8);
        Assert.False(f.Cpu.Faulted);
        Assert.Equal(f.Layout.ReservedGdtDescriptor(0x1C04), d); // checked: DPL 1, limit truncated
        Assert.False(f.CanTranslate(f.Mm.LdtShadowBase + 8, Access.Read, true, out _));
        // While in use, the LDT frame cannot be mapped writable.
        Assert.Equal(-22, f.Uvm(f.SpareVa(4), f.Entry(ldtMfn, P | RW | A)));
        // Dropping the guest's read-only mapping blows the shadow LDT.
        Assert.Equal(0, f.Uvm(ldtVa, 0));
        Assert.Equal(0, f.Mm.Frames.TypeCount(ldtMfn));
        Assert.False(f.CanTranslate(f.Mm.LdtShadowBase + 8, Access.Read, false, out _));
    }

    [Theory, InlineData(false), InlineData(true)]
    public void LazyLdtFailuresBounceWithTheGuestAddress(bool pae)
    {
        var f = new MmFixture(pae);
        // Not mapped at all.
        Assert.Equal((0L, 1u), f.Ext((MmuextCmd.SetLdt, f.UnmappedVa, 1024)));
        uint fault = f.Mm.LdtShadowBase + 0x1010;
        Assert.Equal(new PageFaultOutcome(false, f.UnmappedVa + 0x1010), f.Mm.HandlePageFault(fault, 0, 1));
        // Mapped writable: the frame cannot take the LDT type.
        uint ldtVa = f.SpareVa(3);
        Assert.Equal((0L, 1u), f.Ext((MmuextCmd.SetLdt, ldtVa, 16)));
        Assert.Equal(new PageFaultOutcome(false, ldtVa + 0x10), f.Mm.HandlePageFault(f.Mm.LdtShadowBase + 0x10, 0, 3));
        // A descriptor that check_descriptor refuses.
        uint bad = f.FreeMfn(5);
        f.Domain.Memory.Write64(((ulong)bad << 12) + 0x20, 0x0000_EE00_E008_0000ul); // interrupt gate
        f.Map(ldtVa, bad, P | A);
        Assert.False(f.Mm.HandlePageFault(f.Mm.LdtShadowBase, 0, 1).Handled);
        // A changed LDT drops mapped pages.
        f.Domain.Memory.Write64(((ulong)bad << 12) + 0x20, 0);
        Assert.True(f.Mm.HandlePageFault(f.Mm.LdtShadowBase, 0, 1).Handled);
        Assert.Equal(1, f.Mm.Frames.TypeCount(bad));
        Assert.Equal((0L, 1u), f.Ext((MmuextCmd.SetLdt, ldtVa, 32)));
        Assert.Equal(0, f.Mm.Frames.TypeCount(bad));
        // Faults elsewhere in the hole are plain bounces.
        Assert.Equal(new PageFaultOutcome(false, f.Layout.HypervisorVirtStart - 4), f.Mm.HandlePageFault(f.Layout.HypervisorVirtStart - 4, 2, 1));
    }
}
