using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Trace;
using Replayvisor.Engine.Xen.Hypercalls;
using Replayvisor.Replay.Text;

namespace Replayvisor.Cli.Export;

/// <summary>
/// A trace as a guest-time timeline in the Chrome trace-event JSON format that the Perfetto UI
/// opens (docs/export.md). The time axis is retired instructions: 1 µs of timeline is 1,000
/// instructions (the virtual clock's 1 ns per instruction).
/// </summary>
public static class PerfettoTrace
{
    private const int Pid = 1;
    public const int VcpuTid = 1, EventsTid = 2, ConsoleTid = 3, CheckpointsTid = 4, StateTid = 5;
    private const int SchedOp = 29, SchedOpCompat = 6, SchedBlock = 1, SchedPoll = 3;

    private static double Us(double icount) => icount / 1000.0;

    public static string Render(TraceReader reader)
    {
        var symbols = GuestSymbols.FromImage(reader.GuestImage.Span);
        // An iret is jumped to (never called): its site is the stub, so name who jumps there as `dump` does.
        string iretJumpers = IretJumpers.Of(reader.GuestImage.Span, symbols);
        var events = new JsonArray
        {
            Meta("process_name", 0, $"{reader.Header.GuestImageName} ({reader.Header.GuestKind})"),
            Meta("thread_name", VcpuTid, "vcpu0 hypercalls"),
            Meta("thread_name", StateTid, "vcpu0 running / blocked"),
            Meta("thread_name", EventsTid, "upcalls and exceptions"),
            Meta("thread_name", ConsoleTid, "console"),
            Meta("thread_name", CheckpointsTid, "checkpoints"),
        };
        ulong runningSince = 0;
        ulong? blockedAt = null;
        var line = new StringBuilder();
        ulong lineAt = 0, last = 0;
        foreach (var e in reader.ReadEvents())
        {
            last = e.Icount;
            switch (e)
            {
                case HypercallEvent h:
                {
                    string name = HypercallTable.NameOf(h.Number);
                    int n = h.Multicall.Count;
                    var args = new JsonObject
                    {
                        ["call"] = HypercallFormatter.Format(h.Number, h.Args.AsSpan()),
                        ["result"] = h.Result,
                    };
                    if (h.Site != 0) args["from"] = symbols.Format(h.Site);
                    if (EventText.JumpedTo(symbols, h, iretJumpers)) args["jumped_from"] = iretJumpers;
                    if (h.OutputDigest != 0) args["output_digest"] = h.OutputDigest.ToString("x16", CultureInfo.InvariantCulture);
                    // A hypercall retires as one instruction: its slice is 1 instruction wide, a multicall's
                    // one per entry, each entry a slice nested inside it.
                    events.Add(Slice(name, "hypercall", h.Icount, n + 1, VcpuTid, args));
                    for (int i = 0; i < n; i++)
                    {
                        var m = h.Multicall[i];
                        events.Add(Slice(HypercallTable.NameOf(m.Op), "multicall entry", h.Icount + (double)i + 0.25, 0.5, VcpuTid,
                            new JsonObject { ["result"] = m.Result, ["entry"] = i }));
                    }
                    bool blocks = (h.Number == SchedOp || h.Number == SchedOpCompat) && h.Args.Count > 0 && h.Args[0] is SchedBlock or SchedPoll;
                    if (blocks && blockedAt == null)
                    {
                        events.Add(Slice("running", "vcpu", runningSince, Math.Max(1, (double)(h.Icount - runningSince)), StateTid, null));
                        blockedAt = h.Icount;
                    }
                    break;
                }
                case UpcallEvent u:
                    if (blockedAt is ulong since)
                    {
                        events.Add(Instant("blocked", "vcpu", since, StateTid, new JsonObject { ["woken_at_icount"] = u.Icount }));
                        runningSince = u.Icount;
                        blockedAt = null;
                    }
                    var upcallArgs = new JsonObject { ["vcpu"] = u.Vcpu, ["ports"] = string.Join(",", u.Ports.AsSpan().ToArray()) };
                    if (u.Handler != 0) { upcallArgs["interrupted"] = symbols.Format(u.Eip); upcallArgs["handler"] = symbols.Format(u.Handler); }
                    events.Add(Instant("upcall", "upcall", u.Icount, EventsTid, upcallArgs));
                    break;
                case ExceptionEvent x:
                    var exceptionArgs = new JsonObject
                    {
                        ["vector"] = x.Vector, ["error"] = x.ErrorCode, ["cr2"] = "0x" + x.Cr2.ToString("x8", CultureInfo.InvariantCulture),
                        ["eip"] = symbols.Format(x.Eip),
                    };
                    if (x.Handler != 0) exceptionArgs["handler"] = symbols.Format(x.Handler);
                    events.Add(Instant($"exception {x.Vector}", "exception", x.Icount, EventsTid, exceptionArgs));
                    break;
                case FailsafeEvent f:
                    events.Add(Instant("failsafe", "exception", f.Icount, EventsTid, new JsonObject { ["cause"] = f.Cause, ["eip"] = symbols.Format(f.Eip) }));
                    break;
                case ConsoleOutputEvent c:
                    foreach (byte b in c.Bytes.AsSpan())
                    {
                        if (line.Length == 0) lineAt = c.Icount;
                        if (b == '\n') { events.Add(Instant(line.ToString(), "console", lineAt, ConsoleTid, null)); line.Clear(); }
                        else if (b != '\r') line.Append(b is >= 0x20 and < 0x7F ? (char)b : '?');
                    }
                    break;
                case CheckpointEvent k:
                    events.Add(Instant("checkpoint", "checkpoint", k.Icount, CheckpointsTid,
                        new JsonObject { ["state_hash"] = Convert.ToHexStringLower(k.StateHash.AsSpan()) }));
                    break;
                case ShutdownEvent s:
                    events.Add(Instant($"shutdown {s.Reason}", "shutdown", s.Icount, EventsTid, new JsonObject { ["exit"] = s.Exit.ToString(), ["detail"] = s.Detail }));
                    break;
            }
        }
        if (line.Length > 0) events.Add(Instant(line.ToString(), "console", lineAt, ConsoleTid, null));
        ulong end = reader.Summary?.FinalIcount ?? last;
        if (blockedAt == null && end > runningSince) events.Add(Slice("running", "vcpu", runningSince, end - runningSince, StateTid, null));
        var root = new JsonObject
        {
            ["traceEvents"] = events,
            ["displayTimeUnit"] = "ns",
            ["otherData"] = new JsonObject
            {
                ["image"] = reader.Header.GuestImageName, ["imageSha256"] = reader.Header.GuestImageSha256,
                ["instructions"] = end, ["timeAxis"] = "1 us = 1000 retired instructions",
            },
        };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = false, Encoder = EventText.JsonOptions.Encoder }) + "\n";
    }

    private static JsonObject Meta(string what, int tid, string name) => new()
    {
        ["name"] = what, ["ph"] = "M", ["pid"] = Pid, ["tid"] = tid, ["args"] = new JsonObject { ["name"] = name },
    };

    /// <summary>A complete ("X") slice; the running/blocked state lies on its own thread so it never overlaps hypercall slices.</summary>
    private static JsonObject Slice(string name, string cat, double icount, double instructions, int tid, JsonObject? args) => new()
    {
        ["name"] = name, ["cat"] = cat, ["ph"] = "X", ["ts"] = Us(icount), ["dur"] = Us(instructions),
        ["pid"] = Pid, ["tid"] = tid, ["args"] = args ?? new JsonObject(),
    };

    private static JsonObject Instant(string name, string cat, ulong icount, int tid, JsonObject? args) => new()
    {
        ["name"] = name, ["cat"] = cat, ["ph"] = "i", ["s"] = "t", ["ts"] = Us(icount), ["pid"] = Pid, ["tid"] = tid, ["args"] = args ?? new JsonObject(),
    };
}
