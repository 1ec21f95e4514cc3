using System.Buffers.Binary;
using System.Text;

namespace Replayvisor.Engine.Boot;

/// <summary>
/// A parsed ELF32 little-endian i386 executable: header fields, program headers, section headers
/// with their names. Anything else (not ELF, 64-bit, big-endian, another machine, not ET_EXEC,
/// headers past the end of the file) is refused with a one-line <see cref="BootImageException"/>.
/// </summary>
public sealed class ElfImage
{
    private readonly byte[] _bytes;

    private ElfImage(byte[] bytes) => _bytes = bytes;

    public ReadOnlySpan<byte> Bytes => _bytes;
    public ushort Type { get; private init; }
    public ushort Machine { get; private init; }
    public uint Entry { get; private init; }
    public uint Flags { get; private init; }
    public IReadOnlyList<ElfProgramHeader> ProgramHeaders { get; private init; } = [];
    public IReadOnlyList<ElfSectionHeader> SectionHeaders { get; private init; } = [];

    public static ElfImage Parse(byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        if (bytes.Length < 4 || bytes[0] != 0x7F || bytes[1] != (byte)'E' || bytes[2] != (byte)'L' || bytes[3] != (byte)'F')
            throw new BootImageException(BootError.NotElf, "not an ELF file");
        if (bytes.Length < 6)
            throw new BootImageException(BootError.Truncated, "ELF header truncated");
        if (bytes[4] != Elf.ClassElf32)
            throw new BootImageException(BootError.UnsupportedClass,
                $"ELF class {(bytes[4] == 2 ? "64" : bytes[4].ToString(System.Globalization.CultureInfo.InvariantCulture))}: only 32-bit x86 PV kernels are supported");
        if (bytes[5] != Elf.DataLittleEndian)
            throw new BootImageException(BootError.NotLittleEndian, "ELF data is not little-endian: only little-endian x86 PV kernels are supported");
        if (bytes.Length < Elf.HeaderSize)
            throw new BootImageException(BootError.Truncated, $"ELF header truncated ({bytes.Length} of {Elf.HeaderSize} bytes)");

        var h = bytes.AsSpan();
        ushort type = U16(h, 16), machine = U16(h, 18);
        if (machine != Elf.MachineI386)
            throw new BootImageException(BootError.UnsupportedMachine, $"ELF machine {machine} is not EM_386 (3): only 32-bit x86 PV kernels are supported");
        if (type != Elf.TypeExec)
            throw new BootImageException(BootError.NotExecutable, $"ELF type {type} is not ET_EXEC: a PV kernel must be an executable");

        return new ElfImage(bytes)
        {
            Type = type,
            Machine = machine,
            Entry = U32(h, 24),
            Flags = U32(h, 36),
            ProgramHeaders = ReadProgramHeaders(h),
            SectionHeaders = ReadSectionHeaders(h),
        };
    }

    /// <summary>The file bytes [offset, offset+size), or a Truncated refusal naming <paramref name="what"/>.</summary>
    public ReadOnlySpan<byte> Slice(uint offset, uint size, string what)
    {
        if ((ulong)offset + size > (ulong)_bytes.Length)
            throw new BootImageException(BootError.Truncated,
                $"{what} at file offset 0x{offset:X} size 0x{size:X} runs past the end of the file (0x{_bytes.Length:X} bytes)");
        return _bytes.AsSpan((int)offset, (int)size);
    }

    public ElfSectionHeader? FindSection(string name)
    {
        foreach (var s in SectionHeaders)
            if (s.Name == name) return s;
        return null;
    }

    private static ElfProgramHeader[] ReadProgramHeaders(ReadOnlySpan<byte> h)
    {
        uint off = U32(h, 28);
        ushort size = U16(h, 42), count = U16(h, 44);
        if (count == 0) return [];
        if (size < Elf.ProgramHeaderSize)
            throw new BootImageException(BootError.Truncated, $"ELF program header size {size} is smaller than {Elf.ProgramHeaderSize}");
        CheckTable(h, off, size, count, "program header table");
        var result = new ElfProgramHeader[count];
        for (int i = 0; i < count; i++)
        {
            var p = h[(int)(off + (uint)(i * size))..];
            result[i] = new ElfProgramHeader(U32(p, 0), U32(p, 4), U32(p, 8), U32(p, 12), U32(p, 16), U32(p, 20), U32(p, 24), U32(p, 28));
        }
        return result;
    }

    private static ElfSectionHeader[] ReadSectionHeaders(ReadOnlySpan<byte> h)
    {
        uint off = U32(h, 32);
        ushort size = U16(h, 46), count = U16(h, 48), strIndex = U16(h, 50);
        if (count == 0 || off == 0) return [];
        if (size < Elf.SectionHeaderSize)
            throw new BootImageException(BootError.Truncated, $"ELF section header size {size} is smaller than {Elf.SectionHeaderSize}");
        CheckTable(h, off, size, count, "section header table");
        var raw = new (uint Name, uint Type, uint Flags, uint Addr, uint Off, uint Size, uint Link, uint Info, uint Align, uint EntSize)[count];
        for (int i = 0; i < count; i++)
        {
            var s = h[(int)(off + (uint)(i * size))..];
            raw[i] = (U32(s, 0), U32(s, 4), U32(s, 8), U32(s, 12), U32(s, 16), U32(s, 20), U32(s, 24), U32(s, 28), U32(s, 32), U32(s, 36));
        }
        // Section names live in the string table section e_shstrndx; a bad index just leaves names empty.
        ReadOnlySpan<byte> names = default;
        if (strIndex < count && (ulong)raw[strIndex].Off + raw[strIndex].Size <= (ulong)h.Length)
            names = h.Slice((int)raw[strIndex].Off, (int)raw[strIndex].Size);
        var result = new ElfSectionHeader[count];
        for (int i = 0; i < count; i++)
        {
            var r = raw[i];
            result[i] = new ElfSectionHeader(CString(names, r.Name), r.Name, r.Type, r.Flags, r.Addr, r.Off, r.Size, r.Link, r.Info, r.Align, r.EntSize);
        }
        return result;
    }

    private static void CheckTable(ReadOnlySpan<byte> h, uint off, ushort size, ushort count, string what)
    {
        if ((ulong)off + (ulong)size * count > (ulong)h.Length)
            throw new BootImageException(BootError.Truncated, $"ELF {what} runs past the end of the file");
    }

    /// <summary>A NUL-terminated string at <paramref name="offset"/> ("" when out of range).</summary>
    internal static string CString(ReadOnlySpan<byte> table, uint offset)
    {
        if (offset >= (uint)table.Length) return "";
        var rest = table[(int)offset..];
        int end = rest.IndexOf((byte)0);
        return Encoding.ASCII.GetString(end < 0 ? rest : rest[..end]);
    }

    private static ushort U16(ReadOnlySpan<byte> b, int off) => BinaryPrimitives.ReadUInt16LittleEndian(b[off..]);
    private static uint U32(ReadOnlySpan<byte> b, int off) => BinaryPrimitives.ReadUInt32LittleEndian(b[off..]);
}
