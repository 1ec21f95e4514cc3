namespace Replayvisor.Engine.Boot;

/// <summary>Xen ELF note types (docs/xen-abi.md §6, public/elfnote.h).</summary>
public enum XenNoteType : uint
{
    Info = 0,
    Entry = 1,
    HypercallPage = 2,
    VirtBase = 3,
    PaddrOffset = 4,
    XenVersion = 5,
    GuestOs = 6,
    GuestVersion = 7,
    Loader = 8,
    PaeMode = 9,
    Features = 10,
    BsdSymtab = 11,
    HvStartLow = 12,
    L1MfnValid = 13,
    SuspendCancel = 14,
    InitP2m = 15,
    ModStartPfn = 16,
    SupportedFeatures = 17,
    Phys32Entry = 18,
    Phys32Reloc = 19,
}

/// <summary>Where the Xen parameters were found (§6 search order).</summary>
public enum XenNoteSource
{
    ProgramHeaderNotes,
    SectionNotes,
    LegacyXenGuestString,
}

/// <summary>Paging mode of the guest; chosen from PAE_MODE (§6).</summary>
public enum XenGuestType
{
    /// <summary>"xen-3.0-x86_32": 2-level paging.</summary>
    X86_32,
    /// <summary>"xen-3.0-x86_32p": PAE paging.</summary>
    X86_32Pae,
}

/// <summary>One entry of the FEATURES list; '!' marks a feature the kernel requires.</summary>
public readonly record struct XenFeatureRequest(string Name, bool Required);
