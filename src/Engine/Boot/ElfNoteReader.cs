using System.Buffers.Binary;

namespace Replayvisor.Engine.Boot;

/// <summary>Splits a PT_NOTE segment or SHT_NOTE section into notes (namesz, descsz, type, name, desc; each padded to 4).</summary>
public static class ElfNoteReader
{
    /// <summary>All notes of a note area that is the whole of <paramref name="blob"/>.</summary>
    public static List<ElfNote> Read(ReadOnlySpan<byte> blob) => Read(blob, 0, blob.Length);

    /// <summary>
    /// All notes of the note area [<paramref name="areaStart"/>, +<paramref name="areaLength"/>) of
    /// <paramref name="file"/>. As in Xen's libelf (elf_xen_parse_notes in
    /// xen/common/libelf/libelf-dominfo.c) a note is read while its header starts inside the area,
    /// and its bytes are checked against the image, not the area: GRUB's grub-mkimage writes its
    /// last note (PAE_MODE) with descsz 12 (sizeof "yes,bimodal") but only "yes\0" behind it, the
    /// last bytes of the file, and libelf reads that string up to its NUL (elf_strval). A tail too
    /// short for a note header is ignored, as libelf does. A name, or a descriptor without a NUL
    /// inside the file, that runs past the end of the file makes the image unloadable instead of
    /// silently dropping the notes (which would build the domain from defaults).
    /// </summary>
    public static List<ElfNote> Read(ReadOnlySpan<byte> file, int areaStart, int areaLength)
    {
        var notes = new List<ElfNote>();
        ulong end = (ulong)areaStart + (ulong)areaLength;
        ulong pos = (ulong)areaStart;
        while (end - pos >= 12)
        {
            var header = file[(int)pos..];
            uint nameSize = BinaryPrimitives.ReadUInt32LittleEndian(header);
            uint descSize = BinaryPrimitives.ReadUInt32LittleEndian(header[4..]);
            uint type = BinaryPrimitives.ReadUInt32LittleEndian(header[8..]);
            ulong nameStart = pos + 12;
            ulong descStart = nameStart + Align4(nameSize);
            ulong next = descStart + Align4(descSize);
            if (descStart > (ulong)file.Length || Descriptor(file, descStart, descSize) is not { } desc)
                throw new BootImageException(BootError.Truncated,
                    $"the ELF note at offset {pos - (ulong)areaStart} of its {areaLength}-byte note area claims namesz 0x{nameSize:x} and descsz 0x{descSize:x}, past the end of the file");
            string name = ElfImage.CString(file.Slice((int)nameStart, (int)nameSize), 0);
            notes.Add(new ElfNote(name, type, desc));
            if (next >= end) break;
            pos = next;
        }
        return notes;
    }

    /// <summary>The descriptor bytes; cut after its NUL when it runs past the file (a string note), null when it has none there.</summary>
    private static byte[]? Descriptor(ReadOnlySpan<byte> file, ulong start, uint size)
    {
        if (start + size <= (ulong)file.Length)
            return file.Slice((int)start, (int)size).ToArray();
        var inFile = file[(int)start..];
        int nul = inFile.IndexOf((byte)0);
        return nul < 0 ? null : inFile[..(nul + 1)].ToArray();
    }

    private static ulong Align4(uint n) => ((ulong)n + 3) & ~3ul;
}
