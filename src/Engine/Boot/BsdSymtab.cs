using System.Buffers.Binary;

namespace Replayvisor.Engine.Boot;

/// <summary>
/// The symbol table Xen appends after the kernel when BSD_SYMTAB is "yes" (§6), in libelf's shape,
/// simplified: a u32 byte count of what follows, then an ELF header, three section headers
/// (null, .symtab, .strtab) with offsets relative to that header, then the symbol and string tables.
/// </summary>
public static class BsdSymtab
{
    /// <summary>The blob to append, or null when the image has no SHT_SYMTAB section.</summary>
    public static byte[]? Build(ElfImage elf)
    {
        ArgumentNullException.ThrowIfNull(elf);
        var sections = elf.SectionHeaders;
        int symIndex = -1;
        for (int i = 0; i < sections.Count && symIndex < 0; i++)
            if (sections[i].Type == Elf.ShtSymtab) symIndex = i;
        if (symIndex < 0) return null;
        var sym = sections[symIndex];
        if (sym.Link >= sections.Count || sections[(int)sym.Link].Type != Elf.ShtStrtab) return null;
        var str = sections[(int)sym.Link];
        var symBytes = elf.Slice(sym.Offset, sym.Size, "symbol table");
        var strBytes = elf.Slice(str.Offset, str.Size, "symbol string table");

        const int shOff = Elf.HeaderSize, symOff = shOff + 3 * Elf.SectionHeaderSize;
        int strOff = symOff + symBytes.Length;
        int size = strOff + strBytes.Length;
        var blob = new byte[4 + size];
        var body = blob.AsSpan(4);
        BinaryPrimitives.WriteUInt32LittleEndian(blob, (uint)size);

        elf.Bytes[..16].CopyTo(body);                            // e_ident
        Put16(body, 16, elf.Type); Put16(body, 18, elf.Machine); Put32(body, 20, 1);
        Put32(body, 32, shOff); Put32(body, 36, elf.Flags);
        Put16(body, 40, Elf.HeaderSize); Put16(body, 46, Elf.SectionHeaderSize); Put16(body, 48, 3);

        var sh = body[shOff..];
        WriteSection(sh[Elf.SectionHeaderSize..], sym, symOff, link: 2);
        WriteSection(sh[(2 * Elf.SectionHeaderSize)..], str, strOff, link: 0);
        symBytes.CopyTo(body[symOff..]);
        strBytes.CopyTo(body[strOff..]);
        return blob;
    }

    private static void WriteSection(Span<byte> s, ElfSectionHeader h, int offset, uint link)
    {
        Put32(s, 4, h.Type); Put32(s, 16, (uint)offset); Put32(s, 20, h.Size);
        Put32(s, 24, link); Put32(s, 28, h.Info); Put32(s, 32, h.AddressAlign); Put32(s, 36, h.EntrySize);
    }

    private static void Put16(Span<byte> b, int off, int v) => BinaryPrimitives.WriteUInt16LittleEndian(b[off..], (ushort)v);
    private static void Put32(Span<byte> b, int off, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(b[off..], v);
}
