using System.Buffers.Binary;
using System.Globalization;

namespace Replayvisor.Engine.Boot;

/// <summary>One function or object symbol of a guest image: name, start address and size (0 when unknown).</summary>
public readonly record struct ElfSymbol(string Name, uint Address, uint Size, bool IsFunction);

/// <summary>
/// The guest kernel's symbol table (SHT_SYMTAB with its linked SHT_STRTAB, System V gABI
/// "Symbol Table"), for naming guest addresses as function+offset and finding a symbol's address.
/// Only defined function, object and untyped symbols are kept (no section or file symbols).
/// An image without a symbol table gives an empty table, never an error.
/// </summary>
public sealed class ElfSymbols
{
    private const int SymbolSize = 16;
    private const byte SttNoType = 0, SttObject = 1, SttFunc = 2;

    private readonly ElfSymbol[] _byAddress;
    private readonly Dictionary<string, ElfSymbol> _byName;

    private ElfSymbols(ElfSymbol[] symbols)
    {
        _byAddress = symbols.OrderBy(s => s.Address).ThenBy(s => s.IsFunction ? 0 : 1).ThenBy(s => s.Name, StringComparer.Ordinal).ToArray();
        _byName = new Dictionary<string, ElfSymbol>(StringComparer.Ordinal);
        foreach (var s in _byAddress) _byName.TryAdd(s.Name, s);
    }

    public static ElfSymbols Empty { get; } = new([]);

    public IReadOnlyList<ElfSymbol> All => _byAddress;

    /// <summary>Reads the symbol table of an ELF image (an image that does not parse gives an empty table).</summary>
    public static ElfSymbols FromImage(byte[] image)
    {
        ElfImage elf;
        try { elf = ElfImage.Parse(image); }
        catch (BootImageException) { return Empty; }
        return FromElf(elf);
    }

    public static ElfSymbols FromElf(ElfImage elf)
    {
        ArgumentNullException.ThrowIfNull(elf);
        var sections = elf.SectionHeaders;
        var symtab = sections.FirstOrDefault(s => s.Type == Elf.ShtSymtab);
        if (symtab.Type != Elf.ShtSymtab || symtab.Link >= sections.Count || sections[(int)symtab.Link].Type != Elf.ShtStrtab) return Empty;
        var strtab = sections[(int)symtab.Link];
        ReadOnlySpan<byte> syms, strs;
        try
        {
            syms = elf.Slice(symtab.Offset, symtab.Size, "symbol table");
            strs = elf.Slice(strtab.Offset, strtab.Size, "symbol string table");
        }
        catch (BootImageException) { return Empty; }
        var list = new List<ElfSymbol>();
        for (int off = SymbolSize; off + SymbolSize <= syms.Length; off += SymbolSize) // entry 0 is the undefined symbol
        {
            var e = syms.Slice(off, SymbolSize);
            uint nameOff = BinaryPrimitives.ReadUInt32LittleEndian(e);
            uint value = BinaryPrimitives.ReadUInt32LittleEndian(e[4..]);
            uint size = BinaryPrimitives.ReadUInt32LittleEndian(e[8..]);
            byte type = (byte)(e[12] & 0xF);
            ushort shndx = BinaryPrimitives.ReadUInt16LittleEndian(e[14..]);
            if (shndx == 0 || shndx >= 0xFF00 || type is not (SttNoType or SttObject or SttFunc)) continue; // undefined, absolute, common
            string name = ElfImage.CString(strs, nameOff);
            if (name.Length == 0 || name.StartsWith('.')) continue;
            list.Add(new ElfSymbol(name, value, size, type == SttFunc));
        }
        return new ElfSymbols(list.ToArray());
    }

    /// <summary>The symbol named <paramref name="name"/>.</summary>
    public bool TryLookup(string name, out ElfSymbol symbol) => _byName.TryGetValue(name, out symbol);

    /// <summary>
    /// The symbol containing <paramref name="address"/>: the nearest one at or below it, within its
    /// size when the size is known (an unsized symbol covers up to the next symbol).
    /// </summary>
    public bool TryFind(uint address, out ElfSymbol symbol)
    {
        symbol = default;
        int lo = 0, hi = _byAddress.Length - 1, found = -1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_byAddress[mid].Address <= address) { found = mid; lo = mid + 1; }
            else hi = mid - 1;
        }
        if (found < 0) return false;
        // Several symbols may share the address: prefer the first (functions sort first).
        while (found > 0 && _byAddress[found - 1].Address == _byAddress[found].Address) found--;
        var s = _byAddress[found];
        if (s.Size != 0 && address - s.Address >= s.Size) return false;
        symbol = s;
        return true;
    }

    /// <summary>"name+0x1c" (or "name" at its start) for an address inside a symbol; null otherwise.</summary>
    public string? Describe(uint address)
    {
        if (!TryFind(address, out var s)) return null;
        uint off = address - s.Address;
        return off == 0 ? s.Name : s.Name + "+0x" + off.ToString("x", CultureInfo.InvariantCulture);
    }
}
