using System.Globalization;

namespace Replayvisor.Engine.Boot;

/// <summary>
/// The pre-note `__xen_guest` section: one NUL-terminated string of comma-separated NAME=VALUE items
/// (a bare NAME is allowed), numbers parsed C-style (docs/xen-abi.md §6).
/// </summary>
internal static class LegacyXenGuestString
{
    public static void ApplyTo(XenGuestParams p, string text)
    {
        foreach (string item in text.Split(','))
        {
            if (item.Length == 0) continue;
            int eq = item.IndexOf('=', StringComparison.Ordinal);
            string name = eq < 0 ? item : item[..eq];
            string value = eq < 0 ? "" : item[(eq + 1)..];
            switch (name)
            {
                case "GUEST_OS": p.GuestOs = value; break;
                case "GUEST_VER": p.GuestVersion = value; break;
                case "XEN_VER": p.XenVersion = value; break;
                case "LOADER": p.Loader = value; break;
                case "PAE": p.PaeMode = value; break;
                case "FEATURES": p.Features = value; break;
                case "BSD_SYMTAB": p.BsdSymtab = true; break; // presence counts as true
                case "VIRT_BASE": p.VirtBase = Number(name, value); break;
                case "VIRT_ENTRY": p.Entry = Number(name, value); break;
                case "ELF_PADDR_OFFSET": p.PaddrOffset = Number(name, value); break;
                case "HYPERCALL_PAGE": p.LegacyHypercallPageNumber = Number(name, value); break; // a page number, §6
            }
        }
    }

    /// <summary>strtoull(s, 0): "0x" hex, leading "0" octal, otherwise decimal.</summary>
    public static ulong Number(string name, string value)
    {
        string s = value.Trim();
        try
        {
            if (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
                return ulong.Parse(s.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
            if (s.Length > 1 && s[0] == '0')
                return Convert.ToUInt64(s[1..], 8);
            return ulong.Parse(s, NumberStyles.None, CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is FormatException or OverflowException or ArgumentException)
        {
            throw new BootImageException(BootError.BadNoteValue, $"__xen_guest {name}='{BootText.Quote(value)}' is not a number");
        }
    }
}
