using Replayvisor.Engine.Boot;
using Xunit;

namespace Replayvisor.Engine.Tests.Boot;

public class ElfImageTests
{
    private static BootImageException Refused(byte[] bytes) => Assert.Throws<BootImageException>(() => XenGuestInfo.Parse(bytes));

    [Fact]
    public void ParsesHeaderProgramHeadersAndSectionNames()
    {
        var e = TestElf.Linux(pae: true);
        e.NotesInSection = true;
        var elf = ElfImage.Parse(e.Build());
        Assert.Equal(0xC0100000u, elf.Entry);
        Assert.Equal(2, elf.ProgramHeaders.Count);
        Assert.Equal(Elf.PtLoad, elf.ProgramHeaders[0].Type);
        Assert.Equal(0x100000u, elf.ProgramHeaders[0].PhysicalAddress);
        Assert.Equal(5u * 4096, elf.ProgramHeaders[0].MemorySize);
        Assert.NotNull(elf.FindSection(".note.Xen"));
        Assert.NotNull(elf.FindSection(".shstrtab"));
    }

    [Fact]
    public void NotesAreSplitWithPadding()
    {
        var e = TestElf.Linux(pae: false);
        var elf = ElfImage.Parse(e.Build());
        var ph = elf.ProgramHeaders.Single(p => p.Type == Elf.PtNote);
        var notes = ElfNoteReader.Read(elf.Slice(ph.Offset, ph.FileSize, "notes"));
        Assert.Equal(e.Notes.Count, notes.Count);
        Assert.All(notes, n => Assert.Equal("Xen", n.Name));
        Assert.Equal("linux\0"u8.ToArray(), notes[0].Desc);
    }

    [Fact]
    public void NotElf() => Assert.Equal(BootError.NotElf, Refused("#!/bin/sh\n"u8.ToArray()).Error);

    [Fact]
    public void EmptyFileIsNotElf() => Assert.Equal("not an ELF file", Refused([]).Message);

    [Fact]
    public void Elf64IsRefused()
    {
        var e = TestElf.Linux(true); e.Class = 2;
        var ex = Refused(e.Build());
        Assert.Equal(BootError.UnsupportedClass, ex.Error);
        Assert.Equal("ELF class 64: only 32-bit x86 PV kernels are supported", ex.Message);
    }

    [Fact]
    public void BigEndianIsRefused()
    {
        var e = TestElf.Linux(true); e.Data = 2;
        Assert.Equal(BootError.NotLittleEndian, Refused(e.Build()).Error);
    }

    [Fact]
    public void WrongMachineIsRefused()
    {
        var e = TestElf.Linux(true); e.Machine = 62;
        var ex = Refused(e.Build());
        Assert.Equal(BootError.UnsupportedMachine, ex.Error);
        Assert.Contains("EM_386", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SharedObjectIsRefused()
    {
        var e = TestElf.Linux(true); e.Type = 3;
        Assert.Equal(BootError.NotExecutable, Refused(e.Build()).Error);
    }

    [Fact]
    public void TruncatedHeaderIsRefused()
    {
        var ex = Refused(TestElf.Linux(true).Build()[..40]);
        Assert.Equal(BootError.Truncated, ex.Error);
        Assert.DoesNotContain('\n', ex.Message);
    }

    [Fact]
    public void TruncatedProgramHeadersAreRefused()
    {
        var bytes = TestElf.Linux(true).Build();
        bytes[44] = 0xFF; bytes[45] = 0xFF; // e_phnum far past the file
        Assert.Equal(BootError.Truncated, Refused(bytes).Error);
    }

    [Fact]
    public void SegmentDataPastEndOfFileIsRefused()
    {
        var bytes = TestElf.Linux(true).Build();
        BitConverter.GetBytes(0x7FFFFFFFu).CopyTo(bytes, 52 + 16); // first p_filesz
        BitConverter.GetBytes(0x7FFFFFFFu).CopyTo(bytes, 52 + 20); // p_memsz
        Assert.Equal(BootError.Truncated, Refused(bytes).Error);
    }
}
