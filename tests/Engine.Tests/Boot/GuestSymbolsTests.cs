using System.Text;
using Replayvisor.Engine.Boot;

namespace Replayvisor.Engine.Tests.Boot;

public class GuestSymbolsTests
{
    private const byte Func = 2, Object = 1, NoType = 0, File = 4, Section = 3;

    /// <summary>A kernel whose .symtab (section 1) names its strings in .strtab (section 2).</summary>
    private static byte[] Kernel(params (string Name, uint Value, uint Size, byte Type, ushort Shndx)[] symbols)
    {
        var str = new List<byte> { 0 };
        var sym = new List<byte>(new byte[16]); // entry 0 is the undefined symbol
        foreach (var (name, value, size, type, shndx) in symbols)
        {
            int nameOff = str.Count;
            str.AddRange(Encoding.ASCII.GetBytes(name)); str.Add(0);
            sym.AddRange(BitConverter.GetBytes((uint)nameOff)); sym.AddRange(BitConverter.GetBytes(value));
            sym.AddRange(BitConverter.GetBytes(size)); sym.Add((byte)(0x10 | type)); sym.Add(0); sym.AddRange(BitConverter.GetBytes(shndx));
        }
        var elf = TestElf.Kernel();
        elf.Sections.Add((".symtab", Elf.ShtSymtab, [.. sym], 2));
        elf.Sections.Add((".strtab", Elf.ShtStrtab, [.. str], 0));
        return elf.Build();
    }

    [Fact]
    public void AddressesResolveToTheEnclosingFunctionWithAnOffset()
    {
        var s = GuestSymbols.FromImage(Kernel(
            ("printf", 0xC0102000, 0x40, Func, 1), ("main", 0xC0101000, 0x100, Func, 1),
            ("table", 0xC0108000, 16, Object, 2), ("trap_common", 0xC0103000, 0, NoType, 1),
            ("lib.c", 0, 0, File, 0xFFF1), ("", 0xC0100000, 0, Section, 1), ("absolute", 0x100, 0, NoType, 0xFFF1)));
        Assert.Equal(4, s.Count);
        Assert.Equal("main", s.Name(0xC0101000));
        Assert.Equal("main+0xff", s.Name(0xC01010FF));
        Assert.Equal("", s.Name(0xC0101100));             // past main's size, before printf
        Assert.Equal("printf+0x10", s.Name(0xC0102010));
        Assert.Equal("trap_common+0x24", s.Name(0xC0103024)); // an unsized assembly label reaches up to the next symbol
        Assert.Equal("table+0x8", s.Name(0xC0108008));
        Assert.Equal("", s.Name(0x100));                    // absolute symbols are not addresses
        Assert.Equal("", s.Name(0xC0000000));
        Assert.Equal("0xc0102010 <printf+0x10>", s.Format(0xC0102010));
        Assert.Equal("0xc0100000", s.Format(0xC0100000));
        Assert.Equal("printf", s.FunctionOf(0xC010203F));
        Assert.Equal(0xC0102000u, s.AddressOf("printf"));
    }

    [Fact]
    public void AnUnsizedLabelEndsAtTheNextSymbol()
    {
        var s = GuestSymbols.FromImage(Kernel(("entry", 0xC0100000, 0, NoType, 1), ("next", 0xC0100010, 4, Func, 1)));
        Assert.Equal("entry+0xf", s.Name(0xC010000F));
        Assert.Equal("next", s.Name(0xC0100010));
        Assert.Equal("", s.Name(0xC0100014));
    }

    [Fact]
    public void AKernelWithoutSymbolsOrNotElfHasAnEmptyTable()
    {
        Assert.Equal(0, GuestSymbols.FromImage(TestElf.Kernel().Build()).Count);
        Assert.Equal(0, GuestSymbols.FromImage("not an elf"u8).Count);
        Assert.Equal("", GuestSymbols.FromImage([]).Name(0xC0100000));
    }

    [Fact]
    public void ADamagedSymbolTableIsIgnored()
    {
        var elf = TestElf.Kernel();
        elf.Sections.Add((".symtab", Elf.ShtSymtab, new byte[40], 7)); // link to a section that does not exist
        Assert.Equal(0, GuestSymbols.FromImage(elf.Build()).Count);
    }
}
