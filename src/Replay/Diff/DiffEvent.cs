using System.Globalization;
using System.Text;
using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Trace;
using Replayvisor.Engine.Xen.Hypercalls;

namespace Replayvisor.Replay.Diff;

/// <summary>
/// One guest-visible event as the diff aligns it: <see cref="Key"/> is what must be equal for two
/// builds' events to match (no build-dependent addresses or times), <see cref="Text"/> what is
/// printed, <see cref="Function"/> the guest function it is attributed to (from that run's own
/// symbols) and <see cref="Icount"/> where it happened in that run.
/// </summary>
public sealed record DiffEvent(string Kind, string Key, string Text, ulong Icount, string Function, string? Detail = null)
{
    /// <summary>Hypercall name, for the summary by hypercall (null for other kinds).</summary>
    public string? Hypercall { get; init; }
}

/// <summary>Builds the aligned events of a trace: hypercalls, upcalls, exceptions, failsafe callbacks, console lines and the shutdown.</summary>
public static class DiffEvents
{
    public const string Hypercall = "hypercall", Upcall = "upcall", Exception = "exception", Failsafe = "failsafe", Console = "console", Shutdown = "shutdown";

    /// <param name="iretJumpers">The function(s) that jump to the iret stub (<see cref="IretJumpers"/>): an iret issued from the stub is attributed to them.</param>
    public static List<DiffEvent> From(IEnumerable<TraceEvent> events, GuestSymbols symbols, string iretJumpers = "")
    {
        var list = new List<DiffEvent>();
        var line = new StringBuilder();
        ulong lineStart = 0;
        string lineFunction = "";
        var pendingConsole = new List<(ulong Icount, byte[] Bytes)>();
        foreach (var e in events)
        {
            switch (e)
            {
                case HypercallEvent h:
                {
                    string fn = symbols.FunctionOf(h.Site);
                    if (h.Number == HypercallPage.IretHypercall && fn == "hypercall_page" && iretJumpers.Length > 0) fn = iretJumpers;
                    // Console output is reported before the hypercall that wrote it: attribute it to that call's function.
                    foreach (var (icount, bytes) in pendingConsole) AddConsole(icount, bytes, fn);
                    pendingConsole.Clear();
                    list.Add(new DiffEvent(Hypercall, HypercallKey(h) + OnVcpu(h.Vcpu), HypercallText(h) + OnVcpu(h.Vcpu), h.Icount, fn,
                        h.OutputDigest != 0 ? "out " + h.OutputDigest.ToString("x16", CultureInfo.InvariantCulture) : null)
                    { Hypercall = HypercallTable.NameOf(h.Number) });
                    break;
                }
                case ConsoleOutputEvent c:
                    pendingConsole.Add((c.Icount, c.Bytes.ToArray()));
                    break;
                case UpcallEvent u:
                {
                    // Attributed to the function it interrupted; the text names the callback it entered (traces with upcall sites).
                    string ports = string.Join(",", u.Ports.AsSpan().ToArray());
                    string to = u.Handler != 0 ? " to " + (symbols.FunctionOf(u.Handler) is { Length: > 0 } h ? h : $"0x{u.Handler:x8}") : "";
                    list.Add(new DiffEvent(Upcall, $"upcall vcpu{u.Vcpu} [{ports}]", $"upcall vcpu {u.Vcpu} ports [{ports}]{to}", u.Icount,
                        u.Eip != 0 ? symbols.FunctionOf(u.Eip) : ""));
                    break;
                }
                case ExceptionEvent x:
                {
                    // Attributed to the function it happened in; the text names the trap handler it was delivered to (traces with exception handlers).
                    string to = x.Handler != 0 ? " to " + (symbols.FunctionOf(x.Handler) is { Length: > 0 } h ? h : $"0x{x.Handler:x8}") : "";
                    list.Add(new DiffEvent(Exception, $"exception {x.Vector} {x.ErrorCode:x}{OnVcpu(x.Vcpu)}",
                        $"exception vector {x.Vector} error 0x{x.ErrorCode:x} eip 0x{x.Eip:x8}{to}{OnVcpu(x.Vcpu)}", x.Icount, symbols.FunctionOf(x.Eip)));
                    break;
                }
                case FailsafeEvent f:
                    list.Add(new DiffEvent(Failsafe, $"failsafe {f.Cause}{OnVcpu(f.Vcpu)}", $"failsafe {f.Cause} eip 0x{f.Eip:x8}{OnVcpu(f.Vcpu)}", f.Icount, symbols.FunctionOf(f.Eip)));
                    break;
                case ShutdownEvent s:
                    foreach (var (icount, bytes) in pendingConsole) AddConsole(icount, bytes, "");
                    pendingConsole.Clear();
                    FlushLine();
                    list.Add(new DiffEvent(Shutdown, $"shutdown {s.Reason} {s.Exit} {s.Detail}", Text.EventText.Shutdown(s), s.Icount, ""));
                    break;
            }
        }
        foreach (var (icount, bytes) in pendingConsole) AddConsole(icount, bytes, "");
        FlushLine();
        return list;

        void AddConsole(ulong icount, byte[] bytes, string function)
        {
            foreach (byte b in bytes)
            {
                if (line.Length == 0) { lineStart = icount; lineFunction = function; }
                if (b == '\n') { FlushLine(); continue; }
                if (b != '\r') line.Append(b is >= 0x20 and < 0x7F ? (char)b : '?');
            }
        }

        void FlushLine()
        {
            if (line.Length == 0) return;
            string text = line.ToString();
            list.Add(new DiffEvent(Console, "console " + text, "console " + Quote(text), lineStart, lineFunction));
            line.Clear();
        }
    }

    /// <summary>Name, the arguments that do not depend on the build (commands, counts, ports, flags, domains), result and multicall entries.</summary>
    public static string HypercallKey(HypercallEvent h)
    {
        var sb = new StringBuilder(HypercallTable.NameOf(h.Number)).Append('(');
        var spec = HypercallTable.Instance[h.Number];
        var args = h.Args.AsSpan();
        for (int i = 0; i < args.Length; i++)
        {
            var kind = spec != null && i < spec.Args.Length ? spec.Args[i] : ArgKind.Unused;
            if (kind is ArgKind.Command or ArgKind.Count or ArgKind.Value or ArgKind.DomId or ArgKind.Port or ArgKind.Vcpu or ArgKind.Flags or ArgKind.Selector)
                sb.Append(args[i].ToString(CultureInfo.InvariantCulture));
            else if (kind != ArgKind.Unused) sb.Append('*');
            sb.Append(',');
        }
        sb.Append(")=").Append(h.Result.ToString(CultureInfo.InvariantCulture));
        foreach (var m in h.Multicall.AsSpan()) sb.Append(' ').Append(HypercallTable.NameOf(m.Op)).Append('=').Append(m.Result.ToString(CultureInfo.InvariantCulture));
        return sb.ToString();
    }

    public static string HypercallText(HypercallEvent h)
    {
        string text = $"hypercall {HypercallFormatter.Format(h.Number, h.Args.AsSpan())} = {h.Result}";
        if (h.Multicall.Count > 0)
            text += " [" + string.Join(", ", h.Multicall.AsSpan().ToArray().Select(m => $"{HypercallTable.NameOf(m.Op)}={m.Result}")) + "]";
        return text;
    }

    /// <summary>
    /// " [vcpu N]" for an event of vCPU N ≥ 1, as `dump` prints it; part of the key too, so that a call
    /// made by another vCPU in the other run is a difference. Nothing for vCPU 0 (every one-vCPU run).
    /// </summary>
    private static string OnVcpu(int vcpu) => vcpu == 0 ? "" : $" [vcpu {vcpu.ToString(CultureInfo.InvariantCulture)}]";

    private static string Quote(string s) => "\"" + s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";
}
