namespace Replayvisor.Engine.Boot;

/// <summary>
/// Finds the Xen parameters of an ELF image (§6 search order), applies the defaults and refuses
/// anything Xen 3.1's libelf would refuse, or that we do not support.
/// </summary>
public static class XenGuestInfoParser
{
    public const string LegacySectionName = "__xen_guest";

    public static XenGuestInfo Parse(ElfImage elf)
    {
        ArgumentNullException.ThrowIfNull(elf);
        var p = FindParams(elf);
        CheckLoader(p);
        var type = GuestType(p.PaeMode);
        var features = XenFeatures.Parse(p.Features);
        var layout = XenLayout.For(type);
        return XenAddressRules.Apply(elf, p, layout, features);
    }

    /// <summary>§6: PT_NOTE segments (p_offset 0 skipped) → SHT_NOTE sections → `__xen_guest` → error.</summary>
    internal static XenGuestParams FindParams(ElfImage elf)
    {
        var p = new XenGuestParams { Source = XenNoteSource.ProgramHeaderNotes };
        foreach (var ph in elf.ProgramHeaders)
            if (ph.Type == Elf.PtNote && ph.Offset != 0)
                ApplyXenNotes(p, elf, ph.Offset, ph.FileSize, "PT_NOTE segment");
        if (p.Notes.Count > 0) return p;

        p.Source = XenNoteSource.SectionNotes;
        foreach (var sh in elf.SectionHeaders)
            if (sh.Type == Elf.ShtNote)
                ApplyXenNotes(p, elf, sh.Offset, sh.Size, $"note section '{BootText.Quote(sh.Name)}'");
        if (p.Notes.Count > 0) return p;

        if (elf.FindSection(LegacySectionName) is { } legacy)
        {
            p.Source = XenNoteSource.LegacyXenGuestString;
            string text = XenGuestParams.Str(elf.Slice(legacy.Offset, legacy.Size, $"{LegacySectionName} section"));
            LegacyXenGuestString.ApplyTo(p, text);
            return p;
        }
        throw new BootImageException(BootError.NoXenNotes, "no Xen ELF notes or __xen_guest section: not a Xen PV kernel");
    }

    private static void ApplyXenNotes(XenGuestParams p, ElfImage elf, uint offset, uint size, string what)
    {
        elf.Slice(offset, size, what); // the area itself must lie inside the file
        foreach (var note in ElfNoteReader.Read(elf.Bytes, (int)offset, (int)size))
            if (note.Name == "Xen")
                p.Apply(note);
    }

    /// <summary>§6: 3.1 loads only LOADER "generic…" or GUEST_OS "linux…", built for "xen-3.0…".</summary>
    private static void CheckLoader(XenGuestParams p)
    {
        bool generic = p.Loader?.StartsWith("generic", StringComparison.Ordinal) == true;
        bool linux = p.GuestOs?.StartsWith("linux", StringComparison.Ordinal) == true;
        if (!generic && !linux)
            throw new BootImageException(BootError.UnsupportedLoader,
                $"LOADER '{BootText.Quote(p.Loader)}' is not 'generic' and GUEST_OS '{BootText.Quote(p.GuestOs)}' is not 'linux': Xen 3.1 would not load this kernel");
        if (p.XenVersion is null)
            throw new BootImageException(BootError.UnsupportedXenVersion, "XEN_VERSION is missing: only xen-3.0 kernels are supported");
        if (!p.XenVersion.StartsWith("xen-3.0", StringComparison.Ordinal))
            throw new BootImageException(BootError.UnsupportedXenVersion, $"XEN_VERSION '{BootText.Quote(p.XenVersion)}' is not xen-3.0");
    }

    /// <summary>§6: PAE "yes", "yes[extended-cr3]", "bimodal" or "yes,bimodal" give x86_32p; "no" or absent x86_32.</summary>
    private static XenGuestType GuestType(string? paeMode) => paeMode switch
    {
        null or "" or "no" => XenGuestType.X86_32,
        "yes" or "yes[extended-cr3]" or "bimodal" or "yes,bimodal" => XenGuestType.X86_32Pae,
        _ => throw new BootImageException(BootError.BadNoteValue,
            $"PAE_MODE '{BootText.Quote(paeMode)}' is not one of yes, yes[extended-cr3], bimodal, no"),
    };
}
