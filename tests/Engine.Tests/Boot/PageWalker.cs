using Replayvisor.Engine.Memory;

namespace Replayvisor.Engine.Tests.Boot;

/// <summary>Translates a VA the way the MMU does (SDM vol. 3 §4.3 two-level, §4.4 PAE), returning each level's entry.</summary>
internal static class PageWalker
{
    public readonly record struct Walk(uint Mfn, ulong L1, ulong L2, ulong L3);

    private const ulong PaeAddrMask = 0x000F_FFFF_FFFF_F000;

    public static Walk? Translate(PhysicalMemory mem, uint cr3, bool pae, uint va)
    {
        if (!pae)
        {
            uint pde = mem.Read32((cr3 & ~0xFFFu) + (va >> 22) * 4);
            if ((pde & 1) == 0) return null;
            uint pte = mem.Read32((pde & ~0xFFFu) + ((va >> 12) & 1023) * 4);
            return (pte & 1) == 0 ? null : new Walk(pte >> 12, pte, pde, 0);
        }
        ulong pdpte = mem.Read64((cr3 & ~0x1Fu) + (va >> 30) * 8);
        if ((pdpte & 1) == 0) return null;
        ulong pde64 = mem.Read64((pdpte & PaeAddrMask) + ((va >> 21) & 511) * 8);
        if ((pde64 & 1) == 0) return null;
        ulong pte64 = mem.Read64((pde64 & PaeAddrMask) + ((va >> 12) & 511) * 8);
        return (pte64 & 1) == 0 ? null : new Walk((uint)((pte64 & PaeAddrMask) >> 12), pte64, pde64, pdpte);
    }
}
