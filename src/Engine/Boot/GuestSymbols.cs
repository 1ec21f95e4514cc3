using System.Buffers.Binary;
using System.Globalization;

namespace Replayvisor.Engine.Boot;

/// <summary>A named guest address range from the kernel's ELF symbol table.</summary>
public readonly record struct GuestSymbol(uint Address, uint Size, string Name, bool IsFunction);

/// <summary>
/// The guest kernel's symbol table (SHT_SYMTAB, System V gABI "Symbol Table"), for printing guest
/// addresses as <c>function+0xoffset</c> in dumps, divergence reports, diffs and the debugger.
/// Function and object symbols with a name count; file, section and absolute symbols do not. An
/// address belongs to the closest symbol at or below it: within its size when it has one, or up
/// to the next symbol when it is a sized-zero label (assembly). A kernel without a symbol table,
/// or with a damaged one, gives an empty table: symbols are a convenience, never a reason to fail.
/// </summary>
public sealed class GuestSymbols
{
    private const int SymEntrySize = 16;
    private const byte SttObject = 1, SttFunc = 2, SttNotype = 0, SttFile = 4;
    private const ushort ShnUndef = 0, ShnLoreserve = 0xFF00;

    private readonly GuestSymbol[] _sorted;

    private GuestSymbols(GuestSymbol[] sorted, string[] files)
    {
        _sorted = sorted;
        SourceFiles = files;
    }

    public static readonly GuestSymbols Empty = new([], []);

    /// <summary>The source file names the symbol table lists (STT_FILE), sorted, without duplicates.</summary>
    public IReadOnlyList<string> SourceFiles { get; }

    public IReadOnlyList<GuestSymbol> All => _sorted;
    public int Count => _sorted.Length;

    /// <summary>The symbols of a kernel image (empty when it is not a readable ELF or has no symbol table).</summary>
    public static GuestSymbols FromImage(ReadOnlySpan<byte> image)
    {
        try
        {
            return FromElf(ElfImage.Parse(image.ToArray()));
        }
        catch (BootImageException)
        {
            return Empty;
        }
    }

    public static GuestSymbols FromElf(ElfImage elf)
    {
        ArgumentNullException.ThrowIfNull(elf);
        var sections = elf.SectionHeaders;
        var list = new List<GuestSymbol>();
        var files = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var sym in sections)
        {
            if (sym.Type != Elf.ShtSymtab || sym.Link >= sections.Count) continue;
            var str = sections[(int)sym.Link];
            if ((ulong)sym.Offset + sym.Size > (ulong)elf.Bytes.Length || (ulong)str.Offset + str.Size > (ulong)elf.Bytes.Length) continue;
            var table = elf.Bytes.Slice((int)sym.Offset, (int)sym.Size);
            var names = elf.Bytes.Slice((int)str.Offset, (int)str.Size);
            for (int at = 0; at + SymEntrySize <= table.Length; at += SymEntrySize)
            {
                var e = table.Slice(at, SymEntrySize);
                uint nameOff = BinaryPrimitives.ReadUInt32LittleEndian(e);
                uint value = BinaryPrimitives.ReadUInt32LittleEndian(e[4..]);
                uint size = BinaryPrimitives.ReadUInt32LittleEndian(e[8..]);
                byte type = (byte)(e[12] & 0xF);
                ushort shndx = BinaryPrimitives.ReadUInt16LittleEndian(e[14..]);
                if (type == SttFile && ElfImage.CString(names, nameOff) is { Length: > 0 } file) files.Add(file);
                if (type is not (SttFunc or SttObject or SttNotype) || shndx == ShnUndef || shndx >= ShnLoreserve) continue;
                string name = ElfImage.CString(names, nameOff);
                if (name.Length == 0 || name.StartsWith(".L", StringComparison.Ordinal)) continue;
                list.Add(new GuestSymbol(value, size, name, type == SttFunc));
            }
        }
        // Sized symbols first at one address, then functions, then by name: a stable, deterministic choice.
        list.Sort((a, b) => a.Address != b.Address ? a.Address.CompareTo(b.Address)
            : a.Size != b.Size ? b.Size.CompareTo(a.Size)
            : a.IsFunction != b.IsFunction ? b.IsFunction.CompareTo(a.IsFunction)
            : string.CompareOrdinal(a.Name, b.Name));
        var unique = new List<GuestSymbol>(list.Count);
        foreach (var s in list)
            if (unique.Count == 0 || unique[^1].Address != s.Address) unique.Add(s);
        return new GuestSymbols(unique.ToArray(), [.. files]);
    }

    /// <summary>The symbol an address belongs to and the offset into it, or null.</summary>
    public (GuestSymbol Symbol, uint Offset)? Lookup(uint address)
    {
        int lo = 0, hi = _sorted.Length - 1, found = -1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_sorted[mid].Address <= address) { found = mid; lo = mid + 1; }
            else hi = mid - 1;
        }
        if (found < 0) return null;
        var s = _sorted[found];
        uint offset = address - s.Address;
        if (s.Size != 0 ? offset >= s.Size : found + 1 < _sorted.Length && _sorted[found + 1].Address <= address) return null;
        if (s.Size == 0 && offset >= MaxLabelReach) return null;
        return (s, offset);
    }

    /// <summary>How far past an unsized label an address may still be attributed to it.</summary>
    private const uint MaxLabelReach = 0x10000;

    /// <summary>The address of a symbol by name, or null.</summary>
    public uint? AddressOf(string name)
    {
        foreach (var s in _sorted)
            if (s.Name == name) return s.Address;
        return null;
    }

    /// <summary><c>name+0x1a</c> (or <c>name</c> at offset 0), or "" when no symbol covers the address.</summary>
    public string Name(uint address)
    {
        if (Lookup(address) is not { } r) return "";
        return r.Offset == 0 ? r.Symbol.Name : r.Symbol.Name + "+0x" + r.Offset.ToString("x", CultureInfo.InvariantCulture);
    }

    /// <summary>The function (or object) name alone, or "" when none covers the address.</summary>
    public string FunctionOf(uint address) => Lookup(address) is { } r ? r.Symbol.Name : "";

    /// <summary><c>0xc0102eb0 &lt;printf+0x10&gt;</c>, or the bare hex address when no symbol covers it.</summary>
    public string Format(uint address)
    {
        string hex = "0x" + address.ToString("x8", CultureInfo.InvariantCulture);
        string name = Name(address);
        return name.Length == 0 ? hex : $"{hex} <{name}>";
    }
}
