using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Session;
using Replayvisor.Engine.Trace;

namespace Replayvisor.Replay.Text;

/// <summary>One-line text and JSON forms of trace events: `dump`, `debug`, diff and divergence reports.</summary>
public static class EventText
{
    public static string Kind(TraceEvent e) => e switch
    {
        HypercallEvent => "hypercall",
        UpcallEvent => "upcall",
        TimeEvent => "time",
        ConsoleInputEvent => "console-in",
        ConsoleOutputEvent => "console-out",
        AsyncEvent => "async",
        ExceptionEvent => "exception",
        FailsafeEvent => "failsafe",
        ShutdownEvent => "shutdown",
        CheckpointEvent => "checkpoint",
        _ => e.GetType().Name,
    };

    public static readonly string[] Kinds =
        ["hypercall", "upcall", "time", "console-in", "console-out", "async", "exception", "failsafe", "shutdown", "checkpoint"];

    /// <summary>` &lt;function+0x1a&gt;` for a guest code address with a symbol, "" otherwise.</summary>
    public static string At(GuestSymbols? symbols, uint address) =>
        symbols?.Name(address) is { Length: > 0 } n ? $" <{n}>" : "";

    private static string UpcallSites(GuestSymbols? symbols, UpcallEvent u) =>
        u.Handler == 0 ? "" : $" at 0x{u.Eip:x8}{At(symbols, u.Eip)} to 0x{u.Handler:x8}{At(symbols, u.Handler)}";

    private static string Site(GuestSymbols? symbols, HypercallEvent h, string iretJumpers) =>
        h.Site == 0 ? "" : $" from 0x{h.Site:x8}{At(symbols, h.Site)}{(JumpedTo(symbols, h, iretJumpers) ? $" (jumped to from {iretJumpers})" : "")}";

    /// <summary>An iret issued from its stub in the hypercall page, and the functions that jump there are known (IretJumpers).</summary>
    public static bool JumpedTo(GuestSymbols? symbols, HypercallEvent h, string iretJumpers) =>
        iretJumpers.Length > 0 && h.Number == Engine.Boot.HypercallPage.IretHypercall && symbols?.FunctionOf(h.Site) == "hypercall_page";

    /// <summary>
    /// "shutdown PowerOff GuestShutdown ..." as dump and diff print it. The reason is the guest's (SCHEDOP_shutdown) or
    /// the crash's; a run the recorder ended (instruction limit, stop request) stores a placeholder there, which is left out.
    /// </summary>
    public static string Shutdown(ShutdownEvent s) =>
        $"shutdown {(s.Exit is ExitKind.GuestShutdown or ExitKind.DomainCrashed ? s.Reason + " " : "")}{s.Exit}{(s.Detail.Length > 0 ? " " + s.Detail : "")}";

    /// <summary>
    /// One line per event; an event of a vCPU other than 0 ends with " [vcpu N]" (an upcall names
    /// its vCPU itself). <paramref name="iretJumpers"/>: the functions that jump to the iret stub
    /// (IretJumpers), named after an iret's site.
    /// </summary>
    public static string Text(TraceEvent e, GuestSymbols? symbols = null, string iretJumpers = "") =>
        e is not UpcallEvent && VcpuStamp.Of(e) is int v and not 0 ? Line(e, symbols, iretJumpers) + $" [vcpu {v}]" : Line(e, symbols, iretJumpers);

    private static string Line(TraceEvent e, GuestSymbols? symbols, string iretJumpers) => e switch
    {
        HypercallEvent h => $"{h.Icount,14} hypercall {HypercallNames.Describe(h)}{Site(symbols, h, iretJumpers)}{(h.OutputDigest != 0 ? $" out {h.OutputDigest:x16}" : "")}",
        UpcallEvent u => $"{u.Icount,14} upcall vcpu {u.Vcpu} ports [{string.Join(", ", u.Ports.AsSpan().ToArray())}]{UpcallSites(symbols, u)}",
        TimeEvent t => $"{t.Icount,14} time {t.Kind} {t.Value}",
        ConsoleInputEvent c => $"{c.Icount,14} console-in {Quote(c.Bytes.AsSpan())}",
        ConsoleOutputEvent c => $"{c.Icount,14} console-out {Quote(c.Bytes.AsSpan())}",
        AsyncEvent a => $"{a.Icount,14} async {a.Kind} port {a.Port} arg {a.Arg}",
        ExceptionEvent x => $"{x.Icount,14} exception vector {x.Vector} error 0x{x.ErrorCode:x} cr2 0x{x.Cr2:x8} eip 0x{x.Eip:x8}{At(symbols, x.Eip)}{(x.Handler != 0 ? $" to 0x{x.Handler:x8}{At(symbols, x.Handler)}" : "")}",
        FailsafeEvent f => $"{f.Icount,14} failsafe eip 0x{f.Eip:x8}{At(symbols, f.Eip)} {f.Cause}",
        ShutdownEvent s => $"{s.Icount,14} {Shutdown(s)}",
        CheckpointEvent c => $"{c.Icount,14} checkpoint {Convert.ToHexStringLower(c.StateHash.AsSpan())}",
        _ => $"{e.Icount,14} {e.GetType().Name}",
    };

    /// <summary>Compact JSON; '+' and '<' in symbol names stay readable (output is never embedded in HTML).</summary>
    public static readonly JsonSerializerOptions JsonOptions =
        new() { WriteIndented = false, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static string Json(TraceEvent e, GuestSymbols? symbols = null, string iretJumpers = "")
    {
        var o = new JsonObject { ["icount"] = e.Icount, ["kind"] = Kind(e) };
        if (e is not UpcallEvent && VcpuStamp.Of(e) is int v and not 0) o["vcpu"] = v;
        switch (e)
        {
            case HypercallEvent h:
                o["number"] = h.Number;
                o["name"] = HypercallNames.Name(h.Number);
                o["call"] = Replayvisor.Engine.Xen.Hypercalls.HypercallFormatter.Format(h.Number, h.Args.AsSpan());
                o["args"] = new JsonArray(h.Args.AsSpan().ToArray().Select(a => (JsonNode)a).ToArray());
                o["result"] = h.Result;
                if (h.Site != 0) { o["site"] = h.Site; AddSymbol(o, symbols, h.Site); }
                if (JumpedTo(symbols, h, iretJumpers)) o["jumpedFrom"] = iretJumpers;
                if (h.OutputDigest != 0) o["outputDigest"] = h.OutputDigest.ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
                if (h.Memory.Count > 0)
                    o["memory"] = new JsonArray(h.Memory.AsSpan().ToArray()
                        .Select(w => (JsonNode)new JsonObject { ["address"] = w.Address, ["bytes"] = Convert.ToHexStringLower(w.Bytes.AsSpan()) }).ToArray());
                if (h.Multicall.Count > 0)
                    o["multicall"] = new JsonArray(h.Multicall.AsSpan().ToArray()
                        .Select(m => (JsonNode)new JsonObject { ["op"] = m.Op, ["name"] = HypercallNames.Name(m.Op), ["result"] = m.Result }).ToArray());
                break;
            case UpcallEvent u:
                o["vcpu"] = u.Vcpu;
                o["ports"] = new JsonArray(u.Ports.AsSpan().ToArray().Select(p => (JsonNode)p).ToArray());
                if (u.Handler != 0)
                {
                    o["eip"] = u.Eip;
                    AddSymbol(o, symbols, u.Eip);
                    o["handler"] = u.Handler;
                    if (symbols?.Name(u.Handler) is { Length: > 0 } hn) o["handlerSymbol"] = hn;
                }
                break;
            case TimeEvent t: o["time"] = t.Kind.ToString(); o["value"] = t.Value; break;
            case ConsoleInputEvent c: o["text"] = Encoding.Latin1.GetString(c.Bytes.AsSpan()); break;
            case ConsoleOutputEvent c: o["text"] = Encoding.Latin1.GetString(c.Bytes.AsSpan()); break;
            case AsyncEvent a: o["async"] = a.Kind.ToString(); o["port"] = a.Port; o["arg"] = a.Arg; break;
            case ExceptionEvent x:
                o["vector"] = x.Vector; o["error"] = x.ErrorCode; o["cr2"] = x.Cr2; o["eip"] = x.Eip; AddSymbol(o, symbols, x.Eip);
                if (x.Handler != 0)
                {
                    o["handler"] = x.Handler;
                    if (symbols?.Name(x.Handler) is { Length: > 0 } xn) o["handlerSymbol"] = xn;
                }
                break;
            case FailsafeEvent f: o["eip"] = f.Eip; AddSymbol(o, symbols, f.Eip); o["cause"] = f.Cause; break;
            case ShutdownEvent s: o["reason"] = s.Reason.ToString(); o["exit"] = s.Exit.ToString(); o["detail"] = s.Detail; break;
            case CheckpointEvent c: o["hash"] = Convert.ToHexStringLower(c.StateHash.AsSpan()); break;
        }
        return o.ToJsonString(JsonOptions);
    }

    private static void AddSymbol(JsonObject o, GuestSymbols? symbols, uint address)
    {
        if (symbols?.Name(address) is { Length: > 0 } n) o["symbol"] = n;
    }

    public static string Quote(ReadOnlySpan<byte> bytes)
    {
        var sb = new StringBuilder("\"");
        foreach (byte b in bytes)
        {
            if (b == '\n') sb.Append("\\n");
            else if (b == '\r') sb.Append("\\r");
            else if (b == '\t') sb.Append("\\t");
            else if (b == '"' || b == '\\') sb.Append('\\').Append((char)b);
            else if (b < 0x20 || b >= 0x7F) sb.Append($"\\x{b:x2}");
            else sb.Append((char)b);
        }
        return sb.Append('"').ToString();
    }
}
