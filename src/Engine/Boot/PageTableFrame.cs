namespace Replayvisor.Engine.Boot;

/// <summary>One initial page-table frame: its level (1 = L1, 2 = L2, 3 = PAE L3), where it is, and what it maps.</summary>
public readonly record struct PageTableFrame(int Level, uint Mfn, uint Pfn, uint Va);

/// <summary>x86 page-table entry bits used by the builder (Intel SDM vol. 3 §4.3, §4.4).</summary>
public static class PteFlags
{
    public const ulong Present = 0x001;
    public const ulong Writable = 0x002;
    public const ulong User = 0x004;
    public const ulong Accessed = 0x020;
    public const ulong Dirty = 0x040;

    /// <summary>§7: L1 = P|RW|A, no U (RW cleared for page-table frames).</summary>
    public const ulong L1 = Present | Writable | Accessed;
    /// <summary>§7: L2 = P|RW|A|D|U.</summary>
    public const ulong L2 = Present | Writable | Accessed | Dirty | User;
    /// <summary>§7, §10.2: a PAE L3 entry has P only.</summary>
    public const ulong L3 = Present;
}
