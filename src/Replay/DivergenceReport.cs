using System.Reflection;
using System.Text;
using Iced.Intel;
using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Trace;
using Replayvisor.Replay.Text;

namespace Replayvisor.Replay;

/// <summary>The human-readable account of the first divergence: where, what, registers and code.</summary>
public static class DivergenceReport
{
    /// <param name="iretJumpers">The functions that jump to the iret stub (<see cref="IretJumpers"/>), named after an iret's site.</param>
    public static string Format(Divergence d, XenMachine m, GuestSymbols? symbols = null, string iretJumpers = "")
    {
        symbols ??= GuestSymbols.Empty;
        var sb = new StringBuilder();
        var c = m.Cpu;
        sb.AppendLine($"divergence at instruction {d.Icount:N0} ({d.Icount}): {d.What}");
        sb.AppendLine($"  expected: {Describe(d.Expected, symbols, iretJumpers)}");
        sb.AppendLine($"  actual:   {Describe(d.Actual, symbols, iretJumpers)}");
        if (Differences(d.Expected, d.Actual) is { Length: > 0 } differs) sb.AppendLine($"  differs in: {differs}");
        if (d.Expected is InputEvent input && d.Actual == null)
            sb.AppendLine($"  input recorded at instruction {input.Icount}; the replay reached it at instruction {d.Icount}");
        sb.AppendLine($"  machine now at instruction {c.Icount}, cs:eip {c.Segs[Seg.CS].Selector:x4}:{c.Eip:x8}{EventText.At(symbols, c.Eip)} (cpl {c.Cpl})");
        sb.AppendLine($"  eax {c.Eax:x8} ebx {c.Ebx:x8} ecx {c.Ecx:x8} edx {c.Edx:x8}");
        sb.AppendLine($"  esi {c.Esi:x8} edi {c.Edi:x8} ebp {c.Ebp:x8} esp {c.Esp:x8}");
        sb.AppendLine($"  eflags {c.Eflags:x8} cr0 {c.Cr0:x8} cr2 {c.Cr2:x8} cr3 {c.Cr3:x8} cr4 {c.Cr4:x8}");
        sb.AppendLine($"  ds {c.Segs[Seg.DS].Selector:x4} es {c.Segs[Seg.ES].Selector:x4} fs {c.Segs[Seg.FS].Selector:x4} gs {c.Segs[Seg.GS].Selector:x4} ss {c.Segs[Seg.SS].Selector:x4}");
        sb.AppendLine("  code around eip:");
        foreach (string line in Disassemble(c, c.Eip, 8, symbols)) sb.AppendLine("    " + line);
        return sb.ToString().TrimEnd();
    }

    private static string Describe(TraceEvent? e, GuestSymbols symbols, string iretJumpers) =>
        e == null ? "(nothing)" : EventText.Text(e, symbols, iretJumpers).TrimStart();

    /// <summary>
    /// "Result (expected 1, actual 0)" for each field in which two events of one kind differ; ""
    /// when either is missing or they are of different kinds (the two lines above say it all).
    /// </summary>
    public static string Differences(TraceEvent? expected, TraceEvent? actual)
    {
        if (expected == null || actual == null || expected.GetType() != actual.GetType()) return "";
        var parts = new List<string>();
        foreach (var p in expected.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (p.GetIndexParameters().Length > 0 || p.Name == "EqualityContract") continue;
            object? a = p.GetValue(expected), b = p.GetValue(actual);
            if (!Equals(a, b)) parts.Add($"{p.Name} (expected {Value(a)}, actual {Value(b)})");
        }
        return string.Join("; ", parts);
    }

    private static string Value(object? v) => v switch
    {
        null => "none",
        uint u => u > 0xFFFF ? $"0x{u:x8}" : u.ToString(System.Globalization.CultureInfo.InvariantCulture),
        _ => v.ToString() ?? "",
    };

    /// <summary>Disassembles up to n instructions at eip, reading through the guest's page tables.</summary>
    public static IEnumerable<string> Disassemble(X86Cpu c, uint eip, int n, GuestSymbols? symbols = null)
    {
        symbols ??= GuestSymbols.Empty;
        var bytes = new byte[n * 15];
        int have = 0;
        uint lin = c.Segs[Seg.CS].Base + eip;
        for (; have < bytes.Length; have++)
        {
            if (!c.Translate(lin + (uint)have, Access.Read, false, out ulong pa)) { c.ClearFault(); break; }
            bytes[have] = c.Memory.Read8(pa);
        }
        if (have == 0) { yield return $"{eip:x8}  (not mapped)"; yield break; }
        var decoder = Iced.Intel.Decoder.Create(c.Code32 ? 32 : 16, new ByteArrayCodeReader(bytes, 0, have), eip);
        var fmt = new IntelFormatter();
        var output = new StringOutput();
        for (int i = 0; i < n && decoder.IP < eip + (uint)have; i++)
        {
            decoder.Decode(out var insn);
            if (insn.IsInvalid) break;
            fmt.Format(insn, output);
            string hex = Convert.ToHexStringLower(bytes, (int)(insn.IP32 - eip), insn.Length);
            yield return $"{(i == 0 ? "=>" : "  ")} {insn.IP32:x8}  {hex,-20} {output.ToStringAndReset()}{EventText.At(symbols, insn.IP32)}";
        }
    }
}
