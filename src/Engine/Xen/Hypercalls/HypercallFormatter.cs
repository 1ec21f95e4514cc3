using System.Globalization;
using System.Text;

namespace Replayvisor.Engine.Xen.Hypercalls;

/// <summary>
/// Renders a hypercall with its arguments decoded by the table's argument kinds, e.g.
/// <c>update_va_mapping(va=0xc0150000, pte=0x1fe3067, flags=0x2)</c>. Two-register 64-bit values
/// (time, PTE, machine address, descriptor) are shown joined, low word first (docs/xen-abi.md §1).
/// </summary>
public static class HypercallFormatter
{
    public static string Format(int number, ReadOnlySpan<uint> args)
    {
        var spec = HypercallTable.Instance[number];
        var sb = new StringBuilder(HypercallTable.NameOf(number)).Append('(');
        if (spec == null)
        {
            for (int i = 0; i < args.Length; i++) sb.Append(i == 0 ? "" : ", ").Append(Hex(args[i]));
            return sb.Append(')').ToString();
        }
        bool first = true;
        for (int i = 0; i < spec.Args.Length && i < args.Length; i++)
        {
            ArgKind k = spec.Args[i];
            if (k == ArgKind.Unused) continue;
            string text;
            string name;
            if (IsLow(k) && i + 1 < args.Length)
            {
                ulong v = args[i] | ((ulong)args[i + 1] << 32);
                (name, text) = k switch
                {
                    ArgKind.TimeLo => ("ns", v.ToString(CultureInfo.InvariantCulture)),
                    ArgKind.PteLo => ("pte", "0x" + v.ToString("x", CultureInfo.InvariantCulture)),
                    ArgKind.MachineAddrLo => ("maddr", "0x" + v.ToString("x", CultureInfo.InvariantCulture)),
                    _ => ("desc", "0x" + v.ToString("x16", CultureInfo.InvariantCulture)),
                };
                i++;
            }
            else (name, text) = Single(k, args[i]);
            sb.Append(first ? "" : ", ").Append(name).Append('=').Append(text);
            first = false;
        }
        return sb.Append(')').ToString();
    }

    private static bool IsLow(ArgKind k) => k is ArgKind.TimeLo or ArgKind.PteLo or ArgKind.MachineAddrLo or ArgKind.DescLo;

    private static (string, string) Single(ArgKind k, uint v) => k switch
    {
        ArgKind.Command => ("cmd", v.ToString(CultureInfo.InvariantCulture)),
        ArgKind.Count => ("count", v.ToString(CultureInfo.InvariantCulture)),
        ArgKind.Pointer => ("ptr", Hex(v)),
        ArgKind.Selector => ("sel", "0x" + v.ToString("x4", CultureInfo.InvariantCulture)),
        ArgKind.Address => ("va", Hex(v)),
        ArgKind.DomId => ("dom", v == 0x7FF0 ? "SELF" : "0x" + v.ToString("x", CultureInfo.InvariantCulture)),
        ArgKind.Port => ("port", v.ToString(CultureInfo.InvariantCulture)),
        ArgKind.Vcpu => ("vcpu", v.ToString(CultureInfo.InvariantCulture)),
        ArgKind.Flags => ("flags", Hex(v)),
        _ => ("arg", Hex(v)),
    };

    private static string Hex(uint v) => "0x" + v.ToString("x", CultureInfo.InvariantCulture);
}
