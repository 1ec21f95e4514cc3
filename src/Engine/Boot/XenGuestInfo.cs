namespace Replayvisor.Engine.Boot;

/// <summary>A PT_LOAD segment placed at its guest virtual address (p_paddr + virt_offset, §6).</summary>
public readonly record struct XenLoadSegment(uint VirtualAddress, uint FileOffset, uint FileSize, uint MemorySize)
{
    public ulong VirtualEnd => (ulong)VirtualAddress + MemorySize;
}

/// <summary>
/// What a PV kernel image tells the domain builder (docs/xen-abi.md §6), with defaults applied and
/// every check passed. Build it with <see cref="Parse"/>.
/// </summary>
public sealed record XenGuestInfo
{
    public required XenNoteSource Source { get; init; }
    public required XenGuestType GuestType { get; init; }
    public XenLayout Layout => XenLayout.For(GuestType);
    public bool IsPae => GuestType == XenGuestType.X86_32Pae;

    /// <summary>PAE_MODE "yes"/"yes[extended-cr3]"/"bimodal": the builder enables VMASST pae_extended_cr3 (§7).</summary>
    public required bool PaeExtendedCr3 { get; init; }

    public required uint Entry { get; init; }
    /// <summary>VA of the hypercall page, or null when the kernel names none.</summary>
    public required uint? HypercallPage { get; init; }
    public required uint VirtBase { get; init; }
    public required uint PaddrOffset { get; init; }
    /// <summary>VIRT_BASE − PADDR_OFFSET (mod 2^32).</summary>
    public uint VirtOffset => unchecked(VirtBase - PaddrOffset);
    public required uint VirtKernelStart { get; init; }
    /// <summary>End of the loaded image (exclusive), before any BSD symbol table.</summary>
    public required uint VirtKernelEnd { get; init; }

    public required string XenVersion { get; init; }
    public required string? GuestOs { get; init; }
    public required string? GuestVersion { get; init; }
    public required string? Loader { get; init; }
    public required string? PaeMode { get; init; }
    public required IReadOnlyList<XenFeatureRequest> Features { get; init; }
    public required bool BsdSymtab { get; init; }
    public required bool SuspendCancel { get; init; }
    public required ulong? HvStartLow { get; init; }

    /// <summary>Every Xen note found, raw desc bytes by type (empty for the legacy string).</summary>
    public required IReadOnlyDictionary<uint, byte[]> Notes { get; init; }
    public required IReadOnlyList<XenLoadSegment> Segments { get; init; }

    public static XenGuestInfo Parse(byte[] image) => XenGuestInfoParser.Parse(ElfImage.Parse(image));
}
