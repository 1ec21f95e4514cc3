using System.Globalization;
using System.Text;

namespace Replayvisor.Engine.Boot;

/// <summary>
/// Makes a string taken from a guest image (a note value, a section name, a FEATURES item) safe to
/// quote in a <see cref="BootImageException"/> message, which must stay one short printable line:
/// control characters are escaped (\n, \r, \t, \xNN) and long values are cut.
/// </summary>
internal static class BootText
{
    public const int MaxQuotedChars = 64;

    public static string Quote(string? value)
    {
        if (string.IsNullOrEmpty(value)) return "";
        var sb = new StringBuilder(Math.Min(value.Length, MaxQuotedChars) + 8);
        foreach (char c in value)
        {
            if (sb.Length >= MaxQuotedChars)
            {
                sb.Append("...");
                break;
            }
            switch (c)
            {
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (char.IsControl(c) || char.IsSurrogate(c))
                        sb.Append("\\x").Append(((int)c).ToString("X2", CultureInfo.InvariantCulture));
                    else
                        sb.Append(c);
                    break;
            }
        }
        return sb.ToString();
    }
}
