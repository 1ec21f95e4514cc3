using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Tests.Boot;
using Replayvisor.Engine.Tests.Cpu;
using Replayvisor.Engine.Xen;
using Replayvisor.Engine.Xen.Mm;

namespace Replayvisor.Engine.Tests.Xen.Mm;

/// <summary>A booted 16 MiB domain (Linux-like test ELF) with its memory manager, CPU at ring 1 on the boot tables.</summary>
internal sealed class MmFixture
{
    public const ulong P = 1, RW = 2, U = 4, A = 0x20, D = 0x40;
    public const uint Self = DomId.Self;

    public BuiltDomain Domain { get; }
    public X86Cpu Cpu { get; }
    public RecordingHost Host { get; } = new();
    public GuestMemory Guest { get; }
    public MemoryManager Mm { get; }
    internal PagingFormat Fmt { get; }
    public bool Pae { get; }
    public XenLayout Layout => Domain.Layout;

    public MmFixture(bool pae, bool privileged = false)
    {
        Pae = pae;
        byte[] image = TestElf.Linux(pae).Build();
        var info = XenGuestInfo.Parse(image);
        Domain = DomainBuilder.Build(info, image, new DomainBuildOptions { MemoryMiB = 16, InitialDomain = privileged });
        Cpu = new X86Cpu(Domain.Memory, Host);
        Guest = new GuestMemory(Cpu, Layout.HypervisorVirtStart);
        Mm = new MemoryManager(Cpu, Domain, Guest);
        Mm.Boot();
        Cpu.Segs[Seg.CS] = SegmentCache.Flat(XenLayout.FlatKernelCs, 0xBB);
        foreach (int s in new[] { Seg.DS, Seg.ES, Seg.SS, Seg.FS, Seg.GS })
            Cpu.Segs[s] = SegmentCache.Flat(XenLayout.FlatKernelDs, 0xB3);
        Cpu.Cpl = 1;
        Fmt = new PagingFormat(Domain.Memory, Layout);
    }

    public int PteSize => Pae ? 8 : 4;

    /// <summary>A read-write mapped page after the boot stack (inside the mapped padding) for argument structs.</summary>
    public uint Args => Domain.Virtual.BootStackTop;
    public uint DonePtr => Args + 0xFF0;
    /// <summary>Another RW-mapped padding page, free to remap in tests.</summary>
    public uint SpareVa(int i) => Domain.Virtual.BootStackTop + (uint)(2 + i) * 0x1000;
    /// <summary>The first VA the boot tables do not map (its L2 entry is empty).</summary>
    public uint UnmappedVa => (uint)Domain.Virtual.VirtPgtabEnd;

    /// <summary>A domain frame no boot mapping reaches (zeroed).</summary>
    public uint FreeMfn(int i) => Domain.P2m[(int)Domain.Virtual.MappedPages + i];

    public uint Top => Domain.TopTableMfn;

    public L1Slot L1Of(uint va)
    {
        Assert.True(GuestPageWalk.FindL1(Fmt, Mm.CurrentBaseMfn, va, out var s), $"no L1 for 0x{va:x}");
        return s;
    }

    public ulong L1eMaddr(uint va) { var s = L1Of(va); return ((ulong)s.L1Mfn << 12) + (ulong)(s.Index * PteSize); }
    public uint MfnAt(uint va) => (uint)Fmt.Mfn(L1Of(va).Entry);
    public ulong Entry(uint mfn, ulong flags) => ((ulong)mfn << 12) | flags;

    /// <summary>The L2 holding the entry for va, and that entry's machine address.</summary>
    public ulong L2eMaddr(uint va)
    {
        uint l2 = Pae ? (uint)Fmt.Mfn(Fmt.Read(Mm.CurrentBaseMfn, (int)(va >> 30))) : Mm.CurrentBaseMfn;
        return ((ulong)l2 << 12) + (ulong)(Fmt.L2Index(va) * PteSize);
    }

    public ulong ReadEntryAt(ulong maddr) => Pae ? Domain.Memory.Read64(maddr) : Domain.Memory.Read32(maddr);

    public (long Rc, uint Done) Mmu(uint foreign, params (ulong Ptr, ulong Val)[] reqs)
    {
        for (int i = 0; i < reqs.Length; i++)
        {
            Assert.True(Guest.TryWrite64(Args + (uint)i * 16, reqs[i].Ptr));
            Assert.True(Guest.TryWrite64(Args + (uint)i * 16 + 8, reqs[i].Val));
        }
        Assert.True(Guest.TryWrite32(DonePtr, 0xDEAD));
        long rc = Mm.MmuUpdate(new HypercallArgs(Args, (uint)reqs.Length, DonePtr, foreign, 0, 0));
        Assert.True(Guest.TryRead32(DonePtr, out uint done));
        return (rc, done);
    }

    public (long Rc, uint Done) Mmu(params (ulong Ptr, ulong Val)[] reqs) => Mmu(Self, reqs);

    public (long Rc, uint Done) Ext(uint foreign, params (uint Cmd, uint A1, uint A2)[] ops)
    {
        for (int i = 0; i < ops.Length; i++)
        {
            Assert.True(Guest.TryWrite32(Args + (uint)i * 12, ops[i].Cmd));
            Assert.True(Guest.TryWrite32(Args + (uint)i * 12 + 4, ops[i].A1));
            Assert.True(Guest.TryWrite32(Args + (uint)i * 12 + 8, ops[i].A2));
        }
        Assert.True(Guest.TryWrite32(DonePtr, 0xDEAD));
        long rc = Mm.MmuextOp(new HypercallArgs(Args, (uint)ops.Length, DonePtr, foreign, 0, 0));
        Assert.True(Guest.TryRead32(DonePtr, out uint done));
        return (rc, done);
    }

    public (long Rc, uint Done) Ext(params (uint Cmd, uint A1, uint A2)[] ops) => Ext(Self, ops);

    public long Uvm(uint va, ulong pte, uint flags = Uvmf.Invlpg) =>
        Mm.UpdateVaMapping(new HypercallArgs(va, (uint)pte, (uint)(pte >> 32), flags, 0, 0));

    /// <summary>Maps a frame at va with update_va_mapping; asserts success.</summary>
    public void Map(uint va, uint mfn, ulong flags) => Assert.Equal(0, Uvm(va, Entry(mfn, flags)));

    /// <summary>Installs a fresh zeroed L1 (frame <paramref name="mfn"/>) in the L2 slot of <see cref="UnmappedVa"/>.</summary>
    public void InstallL1AtUnmapped(uint mfn)
    {
        var r = Mmu((L2eMaddr(UnmappedVa), Entry(mfn, P | RW | A | D | U)));
        Assert.Equal((0L, 1u), r);
    }

    public bool CanTranslate(uint va, Access access, bool user, out ulong pa)
    {
        bool ok = Cpu.Translate(va, access, user, out pa);
        if (!ok) Cpu.ClearFault();
        return ok;
    }
}
