using System.Text;
using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Memory;
using Xunit;

namespace Replayvisor.Engine.Tests.Boot;

public class DomainBuilderTests
{
    private static BuiltDomain Build(TestElf e, uint mib = 16, string cmd = "console=hvc0 root=/dev/xvda", bool dom0 = false)
    {
        byte[] image = e.Build();
        return DomainBuilder.Build(XenGuestInfo.Parse(image), image,
            new DomainBuildOptions { MemoryMiB = mib, CommandLine = cmd, InitialDomain = dom0 });
    }

    private static uint VaToMfn(BuiltDomain d, uint va) => d.P2m[(int)((va - d.Guest.VirtBase) >> 12)];
    private static ulong Ma(BuiltDomain d, uint va) => ((ulong)VaToMfn(d, va) << 12) | (va & 0xFFF);

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void StartInfoFields(bool pae)
    {
        var d = Build(TestElf.Linux(pae));
        var mem = d.Memory;
        ulong si = Ma(d, d.Vcpu0.Esi);
        Assert.Equal(d.StartInfoVa, d.Vcpu0.Esi);
        var magic = new byte[32];
        mem.ReadBytes(si, magic);
        Assert.Equal(pae ? "xen-3.0-x86_32p" : "xen-3.0-x86_32", Encoding.ASCII.GetString(magic).TrimEnd('\0'));
        Assert.Equal(16u * 256, mem.Read32(si + 0x20));
        Assert.Equal(d.SharedInfoMfn << 12, mem.Read32(si + 0x24));
        Assert.Equal(0u, mem.Read32(si + 0x28));
        Assert.Equal(d.StoreMfn, mem.Read32(si + 0x2C));
        Assert.Equal(1u, mem.Read32(si + 0x30));
        Assert.Equal(d.ConsoleMfn, mem.Read32(si + 0x34));
        Assert.Equal(2u, mem.Read32(si + 0x38));
        Assert.Equal(d.Virtual.PageTables, mem.Read32(si + 0x3C));
        Assert.Equal(d.Virtual.NrPtFrames, mem.Read32(si + 0x40));
        Assert.Equal((uint)d.PageTables.Count, d.Virtual.NrPtFrames);
        Assert.Equal(d.Virtual.P2mStart, mem.Read32(si + 0x44));
        Assert.Equal(0u, mem.Read32(si + 0x48));
        Assert.Equal(0u, mem.Read32(si + 0x4C));
        var cmd = new byte[1024];
        mem.ReadBytes(si + 0x50, cmd);
        Assert.Equal("console=hvc0 root=/dev/xvda", Encoding.ASCII.GetString(cmd).TrimEnd('\0'));
        Assert.Equal(VaToMfn(d, d.Virtual.Xenstore), d.StoreMfn);
        Assert.Equal(VaToMfn(d, d.Virtual.Console), d.ConsoleMfn);
    }

    [Fact]
    public void RegionsArePackedInSection7Order()
    {
        var v = Build(TestElf.Linux(true)).Virtual;
        Assert.Equal(0xC0100000u, v.KernelStart);
        Assert.Equal(0xC0105000u, v.KernelEnd);
        Assert.Equal(v.KernelEnd, v.P2mStart);
        Assert.Equal(4u, v.P2mPages); // 4096 pfns × 4 bytes
        Assert.Equal(v.P2mStart + 4 * 4096, v.StartInfo);
        Assert.Equal(v.StartInfo + 4096, v.Xenstore);
        Assert.Equal(v.Xenstore + 4096, v.Console);
        Assert.Equal(v.Console + 4096, v.PageTables);
        Assert.Equal(v.PageTables + v.NrPtFrames * 4096, v.BootStack);
        Assert.Equal(0ul, v.VirtPgtabEnd % (4 << 20));
        Assert.True(v.VirtPgtabEnd >= v.BootStackTop + 512 * 1024);
    }

    [Fact]
    public void Dom0Flags()
    {
        var d = Build(TestElf.Linux(false), dom0: true);
        ulong si = Ma(d, d.StartInfoVa);
        Assert.Equal(3u, d.Memory.Read32(si + 0x28));
        Assert.Equal(0u, d.Memory.Read32(si + 0x34)); // dom0: no VGA console info
        Assert.Equal(d.StoreMfn, d.Memory.Read32(si + 0x2C));
    }

    [Fact]
    public void P2mAndM2PAgree()
    {
        var d = Build(TestElf.Linux(true));
        var mem = d.Memory;
        var seen = new HashSet<uint>();
        for (uint pfn = 0; pfn < d.NrPages; pfn++)
        {
            uint mfn = d.P2m[(int)pfn];
            Assert.NotEqual(pfn, mfn);
            Assert.True(seen.Add(mfn));
            Assert.False(d.IsXenOwned(mfn));
            Assert.Equal(pfn, mem.Read32(((ulong)d.M2PFirstMfn << 12) + mfn * 4ul));
            Assert.Equal(mfn, mem.Read32(Ma(d, d.Virtual.P2mStart + pfn * 4))); // the guest's mfn_list
        }
        Assert.NotEqual(d.P2m[0] + 1, d.P2m[1]); // neighbours are not adjacent upwards
        Assert.Equal(d.M2PEntries, d.Memory.FrameCount);
        Assert.True(d.M2PFrameCount * 1024 >= d.M2PEntries);
        for (uint mfn = 0; mfn < d.Frames.DomainBaseMfn; mfn++)
        {
            Assert.True(d.IsXenOwned(mfn));
            Assert.Equal(0x55555555u, mem.Read32(((ulong)d.M2PFirstMfn << 12) + mfn * 4ul));
        }
        Assert.True(d.IsXenOwned(d.SharedInfoMfn));
        Assert.True(d.SpareCount > 0 && d.IsXenOwned(d.SpareFirstMfn + d.SpareCount - 1));
    }

    [Theory]
    [InlineData(true, 16u)]
    [InlineData(false, 16u)]
    [InlineData(true, 64u)]
    [InlineData(false, 64u)]
    public void PageTablesMapTheBootRange(bool pae, uint mib)
    {
        var d = Build(TestElf.Linux(pae), mib);
        var v = d.Virtual;
        var ptMfns = d.PageTables.Select(t => t.Mfn).ToHashSet();
        Assert.Equal(d.TopTableMfn << 12, d.Vcpu0.Cr3);
        for (ulong va = v.VirtBase; va < v.VirtPgtabEnd; va += 4096)
        {
            var w = PageWalker.Translate(d.Memory, d.Vcpu0.Cr3, pae, (uint)va);
            Assert.True(w.HasValue, $"0x{va:X} not mapped");
            var walk = w.Value;
            Assert.Equal(VaToMfn(d, (uint)va), walk.Mfn);
            ulong expected = ptMfns.Contains(walk.Mfn) ? 0x21ul : 0x23ul;    // P|A, or P|RW|A; never U
            Assert.Equal(expected, walk.L1 & 0xFFF);
            Assert.Equal(0x67ul, walk.L2 & 0xFFF);                          // P|RW|U|A|D
            if (pae) Assert.Equal(0x1ul, walk.L3 & 0xFFF);                  // P only
            Assert.Contains((uint)((walk.L2 & 0xFFFFF000) >> 12), ptMfns);
        }
        Assert.Null(PageWalker.Translate(d.Memory, d.Vcpu0.Cr3, pae, (uint)v.VirtPgtabEnd));
        Assert.Null(PageWalker.Translate(d.Memory, d.Vcpu0.Cr3, pae, v.VirtBase - 4096));
        // Every page-table frame is itself mapped read-only.
        foreach (var t in d.PageTables)
            Assert.Equal(0ul, PageWalker.Translate(d.Memory, d.Vcpu0.Cr3, pae, t.Va)!.Value.L1 & 2);
    }

    [Fact]
    public void PaeTableCountsAndOrder()
    {
        var d = Build(TestElf.Linux(true));
        Assert.Equal(3, d.TopTable.Level);
        Assert.Equal(2, d.PageTables[1].Level);
        Assert.All(d.PageTables.Skip(2), t => Assert.Equal(1, t.Level));
        Assert.Equal(d.PageTables[1], d.XenSlotL2);
        int l1s = (int)((d.Virtual.VirtPgtabEnd - 0xC0000000) >> 21);
        Assert.Equal(2 + l1s, d.PageTables.Count);
        // Xen's slots are left for the hypervisor model.
        for (int i = 428; i < 512; i++)
            Assert.Equal(0ul, d.Memory.Read64(((ulong)d.XenSlotL2.Mfn << 12) + (ulong)i * 8));
    }

    [Fact]
    public void NonPaeXenSlotsAreEmpty()
    {
        var d = Build(TestElf.Linux(false));
        Assert.Equal(2, d.TopTable.Level);
        Assert.Equal(d.TopTable, d.XenSlotL2);
        for (int i = 1008; i < 1024; i++)
            Assert.Equal(0u, d.Memory.Read32(((ulong)d.TopTableMfn << 12) + (ulong)i * 4));
    }

    [Fact]
    public void PaeLowVirtBaseGetsExtraSlot3L2()
    {
        var e = TestElf.Kernel(paddr: 0x100000, virtOffset: 0)
            .Note(XenNoteType.GuestOs, "linux").Note(XenNoteType.XenVersion, "xen-3.0").Note(XenNoteType.PaeMode, "yes");
        var d = Build(e);
        Assert.True(d.Virtual.ExtraSlot3L2);
        Assert.Equal(2u, d.Virtual.L2Frames);
        ulong l3 = (ulong)d.TopTableMfn << 12;
        Assert.Equal(((ulong)d.PageTables[1].Mfn << 12) | 1, d.Memory.Read64(l3));
        Assert.Equal(0ul, d.Memory.Read64(l3 + 8));
        Assert.Equal(((ulong)d.PageTables[2].Mfn << 12) | 1, d.Memory.Read64(l3 + 24));
        Assert.Equal(d.PageTables[2], d.XenSlotL2);
        Assert.Equal(VaToMfn(d, 0x100000), PageWalker.Translate(d.Memory, d.Vcpu0.Cr3, true, 0x100000)!.Value.Mfn);
    }

    [Fact]
    public void KernelIsLoadedAndBssZeroed()
    {
        var e = TestElf.Linux(true);
        var d = Build(e);
        byte[] text = e.Loads[0].Data;
        var page = new byte[4096];
        for (int p = 0; p < 5; p++)
        {
            uint va = 0xC0100000u + (uint)p * 4096;
            if (va == 0xC0101000) continue; // hypercall page
            d.Memory.ReadBytes(Ma(d, va), page);
            byte[] expected = p < 3 ? text[(p * 4096)..((p + 1) * 4096)] : new byte[4096];
            Assert.Equal(expected, page);
        }
        d.Memory.ReadBytes(Ma(d, 0xC0000000), page);
        Assert.All(page, b => Assert.Equal(0, b));
    }

    [Fact]
    public void HypercallPageStubs()
    {
        var d = Build(TestElf.Linux(false));
        ulong hp = Ma(d, 0xC0101000);
        var stub = new byte[32];
        for (int i = 0; i < 128; i++)
        {
            d.Memory.ReadBytes(hp + (ulong)i * 32, stub);
            byte[] expected = i == 23
                ? [0x50, 0xB8, 0x17, 0, 0, 0, 0xCD, 0x82]
                : [0xB8, (byte)i, 0, 0, 0, 0xCD, 0x82, 0xC3];
            Assert.Equal(expected, stub[..8]);
        }
    }

    [Fact]
    public void SharedInfoHasAllUpcallsMasked()
    {
        var d = Build(TestElf.Linux(true));
        var frame = d.Memory.FrameBytes(d.SharedInfoMfn).ToArray();
        for (int i = 0; i < 4096; i++)
            Assert.Equal(i < 32 * 64 && i % 64 == 1 ? 1 : 0, frame[i]);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Vcpu0State(bool pae)
    {
        var d = Build(TestElf.Linux(pae));
        var s = d.Vcpu0;
        Assert.Equal(0xC0100000u, s.Eip);
        Assert.Equal(d.Virtual.BootStack + 4096, s.Esp);
        Assert.Equal(d.Virtual.StartInfo, s.Esi);
        Assert.Equal(0x200u, s.Eflags);
        Assert.Equal((ushort)0xE019, s.Cs);
        Assert.All(new[] { s.Ds, s.Es, s.Fs, s.Gs, s.Ss, s.KernelSs }, sel => Assert.Equal((ushort)0xE021, sel));
        Assert.Equal(s.Esp, s.KernelSp);
        Assert.Equal(d.TopTableMfn, s.Cr3Mfn);
        Assert.Equal(pae ? 8u : 0u, s.VmAssist);
        Assert.Equal(0u, s.Eax | s.Ebx | s.Ecx | s.Edx | s.Edi | s.Ebp);
    }

    [Fact]
    public void BsdSymtabIsAppended()
    {
        var e = TestElf.Linux(true).Note(XenNoteType.BsdSymtab, "yes");
        byte[] strtab = "\0start\0"u8.ToArray();
        var sym = new byte[32];
        sym[16] = 1; BitConverter.GetBytes(0xC0100000u).CopyTo(sym, 20);
        // TestElf numbers extra sections from 1: .symtab = 1 links to .strtab = 2.
        e.Sections.Add((".symtab", 2, sym, 2));
        e.Sections.Add((".strtab", 3, strtab, 0));
        var d = Build(e);
        var v = d.Virtual;
        Assert.Equal(0xC0105000u, v.SymtabStart);
        ulong b = Ma(d, v.SymtabStart);
        uint size = d.Memory.Read32(b);
        Assert.Equal(52u + 3 * 40 + 32 + (uint)strtab.Length, size);
        Assert.Equal(0x464C457Fu, d.Memory.Read32(b + 4));
        Assert.Equal(3, d.Memory.Read16(b + 4 + 48));                    // e_shnum
        Assert.Equal(2u, d.Memory.Read32(b + 4 + 52 + 40 + 4));          // section 1 is SHT_SYMTAB
        uint symOff = d.Memory.Read32(b + 4 + 52 + 40 + 16);
        Assert.Equal(0xC0100000u, d.Memory.Read32(b + 4 + symOff + 16 + 4));
        Assert.True(v.KernelEnd >= v.SymtabStart + 4 + size);
        Assert.Equal(v.KernelEnd, v.P2mStart);
    }

    [Fact]
    public void TooLittleMemory()
    {
        var ex = Assert.Throws<BootImageException>(() => Build(TestElf.Linux(true), mib: 2));
        Assert.Equal(BootError.DoesNotFit, ex.Error);
        Assert.Equal("the kernel and boot regions need 4 MiB mapped from VIRT_BASE but the domain has 2 MiB", ex.Message);
        Assert.Equal(4u * 256, Build(TestElf.Linux(true), mib: 4).Virtual.MappedPages); // exactly fits
    }

    [Fact]
    public void MappingReachingTheHypervisorHole()
    {
        var e = TestElf.Kernel(paddr: 0x35700000)
            .Note(XenNoteType.GuestOs, "linux").Note(XenNoteType.XenVersion, "xen-3.0")
            .Note(XenNoteType.VirtBase, 0xC0000000u).Note(XenNoteType.PaeMode, "yes");
        var ex = Assert.Throws<BootImageException>(() => Build(e, mib: 1024));
        Assert.Equal(BootError.DoesNotFit, ex.Error);
        Assert.Contains("HYPERVISOR_VIRT_START", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OverlongCommandLine() =>
        Assert.Equal(BootError.BadOptions,
            Assert.Throws<BootImageException>(() => Build(TestElf.Linux(true), cmd: new string('x', 1024))).Error);

    /// <summary>The most guest memory is what fits beside Xen's frames (not the machine's 2047 MiB), and the refusal says that figure.</summary>
    [Fact]
    public void TheLargestGuestMemoryIsWhatFitsBesideXensFrames()
    {
        uint spare = DomainBuildOptions.DefaultSpareXenFrames;
        uint max = MachineFrameMap.MaxGuestMiB(spare);
        Assert.Equal(2045u, max);
        Assert.True(MachineFrameMap.Create(max * 256, spare).TotalFrames <= MachineFrameMap.MaxMachineFrames);
        var ex = Assert.Throws<BootImageException>(() => MachineFrameMap.Create((max + 1) * 256, spare));
        Assert.Equal(BootError.BadOptions, ex.Error);
        Assert.Contains("2046 MiB of guest memory is too much: with Xen's own frames the machine holds at most 2045 MiB of it", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BuildIsDeterministic()
    {
        var a = Build(TestElf.Linux(true));
        var b = Build(TestElf.Linux(true));
        for (uint f = 0; f < a.Memory.FrameCount; f++)
            Assert.True(a.Memory.FrameBytes(f).SequenceEqual(b.Memory.FrameBytes(f)));
    }
}
