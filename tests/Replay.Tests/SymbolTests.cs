using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Trace;

namespace Replayvisor.Replay.Tests;

/// <summary>The guest symbol table read from the ELF image a trace embeds.</summary>
public class SymbolTests
{
    private static ElfSymbols Of(string trace)
    {
        using var reader = TraceReader.Open(new MemoryStream(File.ReadAllBytes(Path.Combine(Guests.RepoRoot, "traces", trace))));
        return ElfSymbols.FromImage(reader.GuestImage.ToArray());
    }

    [Fact]
    public void FunctionsAreFoundByNameAndAddressesNamedAsFunctionPlusOffset()
    {
        var symbols = Of("events.rvt");
        Assert.True(symbols.TryLookup("guest_main", out var main));
        Assert.True(main.IsFunction && main.Size > 0);
        Assert.Equal("guest_main", symbols.Describe(main.Address));
        Assert.Equal("guest_main+0x10", symbols.Describe(main.Address + 0x10));
        Assert.True(symbols.TryLookup("upcalls", out var data));
        Assert.False(data.IsFunction);
        // Every sized function names every address inside it after itself.
        foreach (var f in symbols.All.Where(s => s.IsFunction && s.Size > 0))
            Assert.StartsWith(f.Name, symbols.Describe(f.Address + f.Size - 1) ?? "(none)");
    }

    [Fact]
    public void AddressesOutsideEverySymbolHaveNoName()
    {
        var symbols = Of("events.rvt");
        Assert.Null(symbols.Describe(0x1000));
        Assert.False(symbols.TryLookup("no_such_function", out _));
    }

    [Fact]
    public void AnImageThatIsNotElfHasAnEmptyTable()
    {
        Assert.Empty(ElfSymbols.FromImage([1, 2, 3]).All);
    }
}
