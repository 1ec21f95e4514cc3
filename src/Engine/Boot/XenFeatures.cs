namespace Replayvisor.Engine.Boot;

/// <summary>The FEATURES list: '|'-separated XENFEAT names, '!' = required (§6, §5 XENFEAT_).</summary>
public static class XenFeatures
{
    /// <summary>Names Xen 3.1 knows, by XENFEAT bit number.</summary>
    public static readonly IReadOnlyList<string> KnownNames =
    [
        "writable_page_tables",
        "writable_descriptor_tables",
        "auto_translated_physmap",
        "supervisor_mode_kernel",
        "pae_pgdir_above_4gb",
    ];

    /// <summary>
    /// Features a kernel may require of us. writable_page_tables is what our ptwr emulation gives
    /// (§10.6); pae_pgdir_above_4gb needs only pae_extended_cr3. The rest we do not provide.
    /// </summary>
    public static readonly IReadOnlyList<string> SupportedRequired = ["writable_page_tables", "pae_pgdir_above_4gb"];

    public static IReadOnlyList<XenFeatureRequest> Parse(string? list)
    {
        var result = new List<XenFeatureRequest>();
        if (string.IsNullOrEmpty(list)) return result;
        foreach (string raw in list.Split('|'))
        {
            string item = raw.Trim();
            bool required = item.StartsWith('!');
            string name = required ? item[1..] : item;
            if (name.Length == 0) continue;
            if (required && !SupportedRequired.Contains(name))
                throw new BootImageException(BootError.UnsupportedFeature, KnownNames.Contains(name)
                    ? $"required feature '{BootText.Quote(name)}' is not supported by this hypervisor model"
                    : $"required feature '{BootText.Quote(name)}' is unknown");
            result.Add(new XenFeatureRequest(name, required));
        }
        return result;
    }
}
