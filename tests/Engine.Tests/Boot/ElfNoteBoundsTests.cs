using System.Buffers.Binary;
using System.Text;
using Replayvisor.Engine.Boot;
using Xunit;

namespace Replayvisor.Engine.Tests.Boot;

/// <summary>
/// Note bounds as Xen's libelf checks them (elf_xen_parse_notes): against the image, not the note
/// area. grub-mkimage -O i386-xen ends its note segment with PAE_MODE, descsz 12 but only "yes\0"
/// written, the last four bytes of the file.
/// </summary>
public class ElfNoteBoundsTests
{
    private static byte[] Note(uint type, byte[] desc, uint? descSize = null)
    {
        var b = new byte[12 + 4 + ((desc.Length + 3) & ~3)];
        BinaryPrimitives.WriteUInt32LittleEndian(b, 4);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4), descSize ?? (uint)desc.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(8), type);
        "Xen\0"u8.CopyTo(b.AsSpan(12));
        desc.CopyTo(b, 16);
        return b;
    }

    private static readonly byte[] Loader = Note(8, "generic\0"u8.ToArray());

    [Fact]
    public void AStringDescriptorRunningPastTheFileIsReadUpToItsNul()
    {
        byte[] file = [.. Loader, .. Note(9, "yes\0"u8.ToArray(), descSize: 12)];
        var notes = ElfNoteReader.Read(file, 0, file.Length);
        Assert.Equal(2, notes.Count);
        Assert.Equal("yes\0"u8.ToArray(), notes[1].Desc);
    }

    [Fact]
    public void ADescriptorPastTheAreaButInsideTheFileIsReadWhole()
    {
        byte[] pae = Note(9, "yes\0"u8.ToArray(), descSize: 12);
        byte[] file = [.. Loader, .. pae, .. "12345678"u8.ToArray()];
        var notes = ElfNoteReader.Read(file, 0, Loader.Length + pae.Length);
        Assert.Equal(Encoding.ASCII.GetBytes("yes\012345678"), notes[1].Desc);
    }

    [Fact]
    public void ADescriptorPastTheFileWithoutANulIsRefused()
    {
        byte[] file = [.. Loader, .. Note(9, "yesy"u8.ToArray(), descSize: 12)];
        var e = Assert.Throws<BootImageException>(() => ElfNoteReader.Read(file, 0, file.Length));
        Assert.Equal(BootError.Truncated, e.Error);
        Assert.Contains("descsz 0xc", e.Message);
    }

    [Fact]
    public void NotesStartOnlyInsideTheArea()
    {
        byte[] file = [.. Loader, .. Loader];
        Assert.Single(ElfNoteReader.Read(file, 0, Loader.Length));
    }
}
