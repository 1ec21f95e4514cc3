using Iced.Intel;

namespace Replayvisor.Engine.Boot;

/// <summary>
/// The functions of a guest image that jump to the iret stub of its hypercall page. A kernel
/// calls every other stub, so a hypercall event's site is the caller's return address; iret
/// never returns and is jumped to (docs/xen-abi.md §1, Linux xen_iret), so its event's site is
/// the stub itself. Decoding each function symbol's code and collecting the direct jumps whose
/// target is that stub names the code that issues the iret instead. Found statically: a kernel
/// with several such functions gets them all (joined with "/"), one whose jump is indirect none.
/// </summary>
public static class IretJumpers
{
    /// <summary>"trap_return" for guests/lib/entry.S; "" when the image has no hypercall page, symbols or direct jump to the stub.</summary>
    public static string Of(ReadOnlySpan<byte> image, GuestSymbols symbols)
    {
        ArgumentNullException.ThrowIfNull(symbols);
        try
        {
            var elf = ElfImage.Parse(image.ToArray());
            var info = XenGuestInfoParser.Parse(elf);
            if (info.HypercallPage is not uint page) return "";
            uint stub = page + (uint)(HypercallPage.IretHypercall * HypercallPage.StubSize);
            var found = new SortedSet<string>(StringComparer.Ordinal);
            var all = symbols.All;
            for (int i = 0; i < all.Count; i++)
            {
                var f = all[i];
                if (!f.IsFunction && f.Size > 0) continue; // a data object
                // An unsized label (assembly) runs to the next symbol, as GuestSymbols attributes addresses.
                uint size = f.Size > 0 ? f.Size : Math.Min(MaxLabelReach, i + 1 < all.Count ? all[i + 1].Address - f.Address : MaxLabelReach);
                if (Code(elf, info, f.Address, size) is { } code && JumpsTo(code, f.Address, stub)) found.Add(f.Name);
            }
            return string.Join("/", found);
        }
        catch (BootImageException)
        {
            return "";
        }
    }

    private const uint MaxLabelReach = 0x10000;

    /// <summary>The bytes at [address, +size) of the executable loadable segment that holds them (segments addressed virtually or physically), or null.</summary>
    private static byte[]? Code(ElfImage elf, XenGuestInfo info, uint address, uint size)
    {
        const uint PtLoad = 1, PfX = 1;
        foreach (var p in elf.ProgramHeaders)
        {
            if (p.Type != PtLoad || (p.Flags & PfX) == 0) continue;
            foreach (uint start in new[] { p.VirtualAddress, unchecked(p.PhysicalAddress + info.VirtOffset) })
                if (address - start < p.FileSize && size <= p.FileSize - (address - start))
                    return elf.Slice(p.Offset + (address - start), size, "function code").ToArray();
        }
        return null;
    }

    private static bool JumpsTo(byte[] code, uint address, uint target)
    {
        var decoder = Decoder.Create(32, new ByteArrayCodeReader(code), address);
        while (decoder.IP < address + (ulong)code.Length)
        {
            var insn = decoder.Decode();
            if (insn.IsInvalid) return false;
            if ((insn.IsJmpShortOrNear || insn.IsJccShortOrNear) && insn.NearBranchTarget == target) return true;
        }
        return false;
    }
}
