using Replayvisor.Engine.Boot;
using Xunit;

namespace Replayvisor.Engine.Tests.Boot;

public class XenGuestInfoTests
{
    private static BootImageException Refused(TestElf e) => Assert.Throws<BootImageException>(() => XenGuestInfo.Parse(e.Build()));

    /// <summary>A Linux-like image minus one note type.</summary>
    private static TestElf LinuxWithout(XenNoteType type, bool pae = true)
    {
        var e = TestElf.Linux(pae);
        e.Notes.RemoveAll(n => n.Type == (uint)type);
        return e;
    }

    [Fact]
    public void LinuxPaeNotes()
    {
        var g = XenGuestInfo.Parse(TestElf.Linux(pae: true).Build());
        Assert.Equal(XenNoteSource.ProgramHeaderNotes, g.Source);
        Assert.Equal(XenGuestType.X86_32Pae, g.GuestType);
        Assert.True(g.PaeExtendedCr3);
        Assert.Equal(0xC0000000u, g.VirtBase);
        Assert.Equal(0u, g.PaddrOffset);
        Assert.Equal(0xC0000000u, g.VirtOffset);
        Assert.Equal(0xC0100000u, g.VirtKernelStart);
        Assert.Equal(0xC0105000u, g.VirtKernelEnd);
        Assert.Equal(0xC0100000u, g.Entry);
        Assert.Equal(0xC0101000u, g.HypercallPage);
        Assert.Equal("linux", g.GuestOs);
        Assert.Equal("2.6", g.GuestVersion);
        Assert.Equal("generic", g.Loader);
        Assert.Equal("xen-3.0", g.XenVersion);
        Assert.Equal([new XenFeatureRequest("writable_page_tables", true), new XenFeatureRequest("pae_pgdir_above_4gb", false)], g.Features);
        Assert.Equal(0xC0100000u, Assert.Single(g.Segments).VirtualAddress);
        Assert.Equal(9, g.Notes.Count);
        Assert.Same(XenLayout.Pae, g.Layout);
    }

    [Fact]
    public void LinuxNonPaeNotes()
    {
        var g = XenGuestInfo.Parse(TestElf.Linux(pae: false).Build());
        Assert.Equal(XenGuestType.X86_32, g.GuestType);
        Assert.False(g.PaeExtendedCr3);
        Assert.Equal(0xFC000000u, g.Layout.HypervisorVirtStart);
    }

    [Theory]
    [InlineData("yes[extended-cr3]", XenGuestType.X86_32Pae)]
    [InlineData("bimodal", XenGuestType.X86_32Pae)]
    [InlineData("yes,bimodal", XenGuestType.X86_32Pae)]
    [InlineData("no", XenGuestType.X86_32)]
    public void PaeModes(string mode, XenGuestType type)
    {
        var e = LinuxWithout(XenNoteType.PaeMode).Note(XenNoteType.PaeMode, mode);
        Assert.Equal(type, XenGuestInfo.Parse(e.Build()).GuestType);
    }

    [Fact]
    public void AbsentPaeModeIsNonPae() =>
        Assert.Equal(XenGuestType.X86_32, XenGuestInfo.Parse(LinuxWithout(XenNoteType.PaeMode).Build()).GuestType);

    [Fact]
    public void UnknownPaeModeIsRefused() =>
        Assert.Equal(BootError.BadNoteValue, Refused(LinuxWithout(XenNoteType.PaeMode).Note(XenNoteType.PaeMode, "maybe")).Error);

    [Fact]
    public void EntryDefaultsToElfEntry()
    {
        var e = LinuxWithout(XenNoteType.Entry);
        e.Entry = 0xC0100010;
        Assert.Equal(0xC0100010u, XenGuestInfo.Parse(e.Build()).Entry);
    }

    [Theory]
    [InlineData(1, 0x12ul)]
    [InlineData(2, 0x3412ul)]
    [InlineData(4, 0x78563412ul)]
    [InlineData(8, 0xF0DEBC9A78563412ul)]
    [InlineData(3, 0ul)]
    [InlineData(16, 0ul)]
    public void NumericDescSizes(int size, ulong expected)
    {
        byte[] raw = [0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0xDE, 0xF0, 1, 2, 3, 4, 5, 6, 7, 8];
        Assert.Equal(expected, XenGuestParams.Number(raw.AsSpan(0, size)));
    }

    [Fact]
    public void EightByteVirtBaseNote()
    {
        var e = LinuxWithout(XenNoteType.VirtBase).Note(XenNoteType.VirtBase, BitConverter.GetBytes(0xC0000000ul));
        Assert.Equal(0xC0000000u, XenGuestInfo.Parse(e.Build()).VirtBase);
    }

    [Fact]
    public void OtherNotesAreStored()
    {
        var e = TestElf.Linux(true).Note(XenNoteType.SuspendCancel, 1u).Note(XenNoteType.HvStartLow, 0xF5800000u)
            .Note(XenNoteType.Info, "hello").Note((XenNoteType)0x2000000, "dump");
        var g = XenGuestInfo.Parse(e.Build());
        Assert.True(g.SuspendCancel);
        Assert.Equal(0xF5800000ul, g.HvStartLow);
        Assert.Equal("hello\0"u8.ToArray(), g.Notes[(uint)XenNoteType.Info]);
        Assert.True(g.Notes.ContainsKey(0x2000000));
    }

    [Fact]
    public void NonXenNotesAreIgnored()
    {
        var e = new TestElf { Entry = 0xC0100000 };
        e.Loads.AddRange(TestElf.Kernel().Loads);
        e.Note(XenNoteType.XenVersion, TestElf.Str("xen-3.0"), name: "GNU");
        Assert.Equal(BootError.NoXenNotes, Refused(e).Error);
    }

    [Fact]
    public void SectionNotesAreUsedWhenNoNoteSegment()
    {
        var e = TestElf.Linux(true);
        e.NotesInSegment = false; e.NotesInSection = true;
        Assert.Equal(XenNoteSource.SectionNotes, XenGuestInfo.Parse(e.Build()).Source);
    }

    [Fact]
    public void NoteSegmentAtOffsetZeroIsSkipped()
    {
        var e = TestElf.Linux(true);
        e.NoteSegmentAtOffsetZero = true;
        Assert.Equal(BootError.NoXenNotes, Refused(e).Error);
        e.NotesInSection = true;
        Assert.Equal(XenNoteSource.SectionNotes, XenGuestInfo.Parse(e.Build()).Source);
    }

    [Fact]
    public void NoNotesAtAll()
    {
        var ex = Refused(TestElf.Kernel());
        Assert.Equal(BootError.NoXenNotes, ex.Error);
        Assert.StartsWith("no Xen ELF notes or __xen_guest section", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LegacyString()
    {
        // Old kernels: p_paddr = virtual address, PADDR_OFFSET defaults to VIRT_BASE, HYPERCALL_PAGE is a page number.
        var e = TestElf.Kernel(paddr: 0xC0100000, virtOffset: 0)
            .Legacy("GUEST_OS=linux,GUEST_VER=2.6,XEN_VER=xen-3.0,VIRT_BASE=0xC0000000,VIRT_ENTRY=0xC0100000,HYPERCALL_PAGE=0x101,PAE=yes[extended-cr3],LOADER=generic,BSD_SYMTAB");
        var g = XenGuestInfo.Parse(e.Build());
        Assert.Equal(XenNoteSource.LegacyXenGuestString, g.Source);
        Assert.Equal(0xC0000000u, g.PaddrOffset);
        Assert.Equal(0u, g.VirtOffset);
        Assert.Equal(0xC0100000u, g.VirtKernelStart);
        Assert.Equal(0xC0101000u, g.HypercallPage);
        Assert.Equal(XenGuestType.X86_32Pae, g.GuestType);
        Assert.True(g.BsdSymtab);
        Assert.Equal("2.6", g.GuestVersion);
    }

    [Fact]
    public void LegacyNumbersAreCStyle()
    {
        var e = TestElf.Kernel(paddr: 0x100000, virtOffset: 0xC0000000)
            .Legacy("GUEST_OS=linux,XEN_VER=xen-3.0,VIRT_BASE=030000000000,ELF_PADDR_OFFSET=0,VIRT_ENTRY=3222274048,HYPERCALL_PAGE=258");
        var g = XenGuestInfo.Parse(e.Build());
        Assert.Equal(0xC0000000u, g.VirtBase); // octal
        Assert.Equal(0u, g.PaddrOffset);
        Assert.Equal(0xC0100000u, g.Entry);    // decimal
        Assert.Equal(0xC0102000u, g.HypercallPage);
        Assert.Equal(XenGuestType.X86_32, g.GuestType);
    }

    [Fact]
    public void LegacyBadNumberIsRefused()
    {
        var ex = Refused(TestElf.Kernel().Legacy("GUEST_OS=linux,XEN_VER=xen-3.0,VIRT_BASE=0xZZ"));
        Assert.Equal(BootError.BadNoteValue, ex.Error);
        Assert.Contains("VIRT_BASE", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void WrongXenVersion()
    {
        var ex = Refused(LinuxWithout(XenNoteType.XenVersion).Note(XenNoteType.XenVersion, "xen-2.0"));
        Assert.Equal(BootError.UnsupportedXenVersion, ex.Error);
        Assert.Equal("XEN_VERSION 'xen-2.0' is not xen-3.0", ex.Message);
    }

    [Fact]
    public void MissingXenVersion() =>
        Assert.Equal(BootError.UnsupportedXenVersion, Refused(LinuxWithout(XenNoteType.XenVersion)).Error);

    [Fact]
    public void LoaderOrLinuxRequired()
    {
        var e = LinuxWithout(XenNoteType.Loader);
        e.Notes.RemoveAll(n => n.Type == (uint)XenNoteType.GuestOs);
        e.Note(XenNoteType.GuestOs, "netbsd");
        Assert.Equal(BootError.UnsupportedLoader, Refused(e).Error);
        e.Note(XenNoteType.Loader, "generic");
        Assert.Equal("netbsd", XenGuestInfo.Parse(e.Build()).GuestOs);
    }

    [Theory]
    [InlineData("!auto_translated_physmap", "required feature 'auto_translated_physmap' is not supported by this hypervisor model")]
    [InlineData("!supervisor_mode_kernel", "required feature 'supervisor_mode_kernel' is not supported by this hypervisor model")]
    [InlineData("writable_page_tables|!teleportation", "required feature 'teleportation' is unknown")]
    public void UnsupportedRequiredFeatures(string features, string message)
    {
        var ex = Refused(LinuxWithout(XenNoteType.Features).Note(XenNoteType.Features, features));
        Assert.Equal(BootError.UnsupportedFeature, ex.Error);
        Assert.Equal(message, ex.Message);
    }

    [Fact]
    public void OptionalUnknownFeatureIsAccepted()
    {
        var e = LinuxWithout(XenNoteType.Features).Note(XenNoteType.Features, "teleportation|!pae_pgdir_above_4gb");
        Assert.Equal(2, XenGuestInfo.Parse(e.Build()).Features.Count);
    }

    [Fact]
    public void PaddrOffsetWithoutVirtBase()
    {
        var e = LinuxWithout(XenNoteType.VirtBase).Note(XenNoteType.PaddrOffset, 0u);
        var ex = Refused(e);
        Assert.Equal(BootError.BadAddressLayout, ex.Error);
        Assert.Equal("PADDR_OFFSET is set but VIRT_BASE is not", ex.Message);
    }

    [Fact]
    public void EntryOutsideKernel()
    {
        var ex = Refused(LinuxWithout(XenNoteType.Entry).Note(XenNoteType.Entry, 0xC0200000u));
        Assert.Equal(BootError.BadAddressLayout, ex.Error);
        Assert.Contains("entry 0xC0200000", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void KernelBelowVirtBase()
    {
        var ex = Refused(LinuxWithout(XenNoteType.VirtBase).Note(XenNoteType.VirtBase, 0xC0200000u)
            .Note(XenNoteType.PaddrOffset, 0x200000u)); // kstart = 0x100000 + 0xC0000000 < VIRT_BASE
        Assert.Equal(BootError.BadAddressLayout, ex.Error);
    }

    [Fact]
    public void HypercallPageOutsideKernel() =>
        Assert.Equal(BootError.BadNoteValue,
            Refused(LinuxWithout(XenNoteType.HypercallPage).Note(XenNoteType.HypercallPage, 0xC0300000u)).Error);

    [Fact]
    public void SegmentAboveHypervisorStartPae()
    {
        // 0xF6000000 is below the non-PAE hole (0xFC000000) but inside the PAE one (0xF5800000).
        TestElf Make(bool pae) => TestElf.Kernel(paddr: 0x36000000)
            .Note(XenNoteType.GuestOs, "linux").Note(XenNoteType.XenVersion, "xen-3.0")
            .Note(XenNoteType.VirtBase, 0xC0000000u).Note(XenNoteType.PaeMode, pae ? "yes" : "no");
        var ex = Refused(Make(pae: true));
        Assert.Equal(BootError.SegmentOutOfRange, ex.Error);
        Assert.Contains("HYPERVISOR_VIRT_START 0xF5800000", ex.Message, StringComparison.Ordinal);
        Assert.Equal(0xF6000000u, XenGuestInfo.Parse(Make(pae: false).Build()).VirtKernelStart);
    }

    [Fact]
    public void SegmentWrappingPast4GIsRefused()
    {
        var e = TestElf.Kernel(paddr: 0x3FFFF000)
            .Note(XenNoteType.GuestOs, "linux").Note(XenNoteType.XenVersion, "xen-3.0").Note(XenNoteType.VirtBase, 0xC0000000u);
        Assert.Equal(BootError.SegmentOutOfRange, Refused(e).Error);
    }

    [Fact]
    public void FileSizeLargerThanMemSize()
    {
        var e = TestElf.Linux(true);
        e.Loads[0] = (e.Loads[0].Paddr, e.Loads[0].Vaddr, e.Loads[0].Data, 4096);
        Assert.Equal(BootError.BadAddressLayout, Refused(e).Error);
    }

    [Fact]
    public void ReservedGdtDescriptors()
    {
        Assert.Equal(0x00CFBA00_000067FFul, XenLayout.Pae.ReservedGdtDescriptor(0x1C03));
        Assert.Equal(0x00CFB200_0000C3FFul, XenLayout.NonPae.ReservedGdtDescriptor(0x1C04));
        Assert.Equal(0x00CF9A00_0000FFFFul, XenLayout.NonPae.ReservedGdtDescriptor(0x1C01));
        Assert.Equal(0x00CFF200_000067FFul, XenLayout.Pae.ReservedGdtDescriptor(0x1C06));
        Assert.Equal(0xF67FFu, XenLayout.Pae.FlatSegmentLimitPages);
        Assert.Equal(0xFC3FFu, XenLayout.NonPae.FlatSegmentLimitPages);
        Assert.Equal(0x1C03, XenLayout.FlatRing1Cs >> 3);
        Assert.Equal(7168, XenLayout.FirstReservedGdtEntry);
    }
}
