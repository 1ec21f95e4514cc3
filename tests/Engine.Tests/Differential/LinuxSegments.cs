using Replayvisor.Engine.Cpu;

namespace Replayvisor.Engine.Tests.Differential;

/// <summary>
/// The descriptor tables a 32-bit process sees on the host's x86-64 Linux, rebuilt for the
/// emulator so segment loads and checks meet the same descriptors on both sides: the GDT entries
/// a snippet can name (Linux's arch/x86/include/asm/segment.h layout: 0x08 kernel 32-bit code,
/// 0x18 kernel data, 0x23 user 32-bit code, 0x2b user data, index 7 empty, index 8 the TSS,
/// limit 16 entries), and the LDT that tests/native/diffrunner.c installs with modify_ldt.
/// </summary>
public static class LinuxSegments
{
    public const ushort KernelCode32 = 0x08, KernelData = 0x18, UserCode32 = 0x23, UserData = 0x2B, LdtSelector = 0x50;
    public const uint GdtLimit = 16 * 8 - 1;

    /// <summary>GDT index → descriptor (Linux's GDT_ENTRY_INIT flags; every other index is empty).</summary>
    public static readonly (int Index, ulong Descriptor)[] Gdt =
    [
        (1, Seg(0, 0xFFFFF, 0xC09B)),   // KERNEL32_CS: 32-bit code, DPL 0
        (2, Seg(0, 0xFFFFF, 0xA09B)),   // KERNEL_CS: 64-bit code, DPL 0
        (3, Seg(0, 0xFFFFF, 0xC093)),   // KERNEL_DS: data, DPL 0
        (4, Seg(0, 0xFFFFF, 0xC0FB)),   // USER32_CS: 32-bit code, DPL 3
        (5, Seg(0, 0xFFFFF, 0xC0F3)),   // USER_DS: data, DPL 3
        (6, Seg(0, 0xFFFFF, 0xA0FB)),   // USER_CS: 64-bit code, DPL 3
        (8, Seg(0, 0x67, 0x008B)),      // TSS (busy), a system descriptor
    ];

    /// <summary>
    /// The LDT entries of diffrunner.c's ldt_entries, as Linux's fill_ldt encodes them (type with
    /// the accessed bit set, S=1, DPL 3). Selector = index * 8 + 7.
    /// </summary>
    public static readonly ulong[] Ldt =
    [
        Seg(DiffCase.DataBase, 0x0FFF, 0x40F3),          // 0x07 data RW, the data page only
        Seg(DiffCase.DataBase, 0x1FFF, 0x40F1),          // 0x0f data read-only
        Seg(DiffCase.DataBase, 0x0FFF, 0x40F7),          // 0x17 data RW expand-down, 32-bit
        Seg(DiffCase.CodeBase, 0x0FFF, 0x40FB),          // 0x1f code execute/read
        Seg(DiffCase.CodeBase, 0x0FFF, 0x40F9),          // 0x27 code execute-only
        Seg(DiffCase.DataBase, 0x1FFF, 0x4073),          // 0x2f data, not present
        Seg(DiffCase.DataBase + 0x800, 0x07FF, 0x00F3),  // 0x37 16-bit data at data+0x800
    ];

    /// <summary>A descriptor from base, the 20-bit limit field and the flags word (access byte low, G/D/L/AVL high nibble at 0xF000).</summary>
    private static ulong Seg(uint bas, uint limit, int flags)
    {
        ulong lo = (limit & 0xFFFF) | ((bas & 0xFFFF) << 16);
        ulong hi = ((bas >> 16) & 0xFF) | ((uint)(flags & 0xFF) << 8) | (limit & 0xF0000) | ((uint)(flags & 0xF000) << 8) | (bas & 0xFF000000u);
        return lo | (hi << 32);
    }

    public static ulong GdtEntry(int index)
    {
        foreach (var (i, d) in Gdt) if (i == index) return d;
        return 0;
    }
}
