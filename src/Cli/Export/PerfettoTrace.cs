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
    private const int VcpuOp = 24, VcpuOpUp = 1, VcpuOpDown = 2, MaxVcpus = 32;

    private static double Us(double icount) => icount / 1000.0;

    /// <summary>The thread of a vCPU's hypercalls: 1 for vCPU 0 (as before several vCPUs existed), 100 + N for vCPU N.</summary>
    public static int HypercallTid(int vcpu) => vcpu == 0 ? VcpuTid : 100 + vcpu;

    /// <summary>The thread of a vCPU's running / blocked periods: 5 for vCPU 0, 200 + N for vCPU N.</summary>
    public static int RunStateTid(int vcpu) => vcpu == 0 ? StateTid : 200 + vcpu;

    public static string Render(TraceReader reader) => Render(reader, out _);

    /// <param name="end">The timeline's last instruction count: the run's final count, or for an incomplete trace its last event's.</param>
    public static string Render(TraceReader reader, out ulong end)
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
        // Each vCPU's run state: vCPU 0 runs from instruction 0; another from VCPUOP_up or its first event.
        var vcpus = new SortedDictionary<int, RunState> { [0] = new RunState { RunningSince = 0 } };
        var line = new StringBuilder();
        ulong lineAt = 0, last = 0;
        foreach (var e in reader.ReadEvents())
        {
            last = e.Icount;
            switch (e)
            {
                case HypercallEvent h:
                {
                    Ran(h.Vcpu, h.Icount);
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
                    int tid = HypercallTid(h.Vcpu);
                    events.Add(Slice(name, "hypercall", h.Icount, n + 1, tid, args));
                    for (int i = 0; i < n; i++)
                    {
                        var m = h.Multicall[i];
                        events.Add(Slice(HypercallTable.NameOf(m.Op), "multicall entry", h.Icount + (double)i + 0.25, 0.5, tid,
                            new JsonObject { ["result"] = m.Result, ["entry"] = i }));
                    }
                    bool blocks = (h.Number == SchedOp || h.Number == SchedOpCompat) && h.Args.Count > 0 && h.Args[0] is SchedBlock or SchedPoll;
                    if (blocks) Stop(h.Vcpu, h.Icount, "blocked");
                    // VCPUOP_up starts a vCPU, VCPUOP_down stops one (the caller itself or another).
                    if (h.Number == VcpuOp && h.Result == 0 && h.Args.Count > 1 && h.Args[1] < MaxVcpus)
                    {
                        if (h.Args[0] == VcpuOpUp) Ran((int)h.Args[1], h.Icount);
                        else if (h.Args[0] == VcpuOpDown) Stop((int)h.Args[1], h.Icount, "down");
                    }
                    break;
                }
                case UpcallEvent u:
                    Ran(u.Vcpu, u.Icount);
                    var upcallArgs = new JsonObject { ["vcpu"] = u.Vcpu, ["ports"] = string.Join(",", u.Ports.AsSpan().ToArray()) };
                    if (u.Handler != 0) { upcallArgs["interrupted"] = symbols.Format(u.Eip); upcallArgs["handler"] = symbols.Format(u.Handler); }
                    events.Add(Instant("upcall", "upcall", u.Icount, EventsTid, upcallArgs));
                    break;
                case ExceptionEvent x:
                    Ran(x.Vcpu, x.Icount);
                    var exceptionArgs = new JsonObject
                    {
                        ["vcpu"] = x.Vcpu, ["vector"] = x.Vector, ["error"] = x.ErrorCode, ["cr2"] = "0x" + x.Cr2.ToString("x8", CultureInfo.InvariantCulture),
                        ["eip"] = symbols.Format(x.Eip),
                    };
                    if (x.Handler != 0) exceptionArgs["handler"] = symbols.Format(x.Handler);
                    events.Add(Instant($"exception {x.Vector}", "exception", x.Icount, EventsTid, exceptionArgs));
                    break;
                case FailsafeEvent f:
                    Ran(f.Vcpu, f.Icount);
                    events.Add(Instant("failsafe", "exception", f.Icount, EventsTid, new JsonObject { ["vcpu"] = f.Vcpu, ["cause"] = f.Cause, ["eip"] = symbols.Format(f.Eip) }));
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
                    events.Add(Instant(s.Exit is ExitKind.GuestShutdown or ExitKind.DomainCrashed ? $"shutdown {s.Reason}" : $"shutdown {s.Exit}", "shutdown", s.Icount, EventsTid, new JsonObject { ["exit"] = s.Exit.ToString(), ["detail"] = s.Detail }));
                    break;
            }
        }
        if (line.Length > 0) events.Add(Instant(line.ToString(), "console", lineAt, ConsoleTid, null));
        end = reader.Summary?.FinalIcount ?? last;
        // An incomplete trace (a killed recorder: docs/record-replay.md "Killed and interrupted recorders") holds
        // the run only up to its last event; the timeline says where it stops, instead of looking like a run that ended there.
        if (!reader.Complete)
            events.Add(Instant("trace ends here (incomplete)", "incomplete", end, EventsTid, new JsonObject { ["reason"] = reader.IncompleteReason }));
        foreach (var (vcpu, state) in vcpus)
        {
            if (state.RunningSince is ulong since && end > since)
                events.Add(Slice("running", "vcpu", since, end - since, RunStateTid(vcpu), null));
            else if (state.StoppedAt is ulong at)
                events.Add(Instant(state.StoppedAs, "vcpu", at, RunStateTid(vcpu), new JsonObject()));
        }
        var root = new JsonObject
        {
            ["traceEvents"] = events,
            ["displayTimeUnit"] = "ns",
            ["otherData"] = new JsonObject
            {
                ["image"] = reader.Header.GuestImageName, ["imageSha256"] = reader.Header.GuestImageSha256,
                ["instructions"] = end, ["timeAxis"] = "1 us = 1000 retired instructions",
                ["complete"] = reader.Complete, ["incompleteReason"] = reader.IncompleteReason,
            },
        };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = false, Encoder = EventText.JsonOptions.Encoder }) + "\n";

        // vCPU `vcpu` was running at `icount` (it issued an event, was sent an upcall or was brought up):
        // a blocked or down period ends here and a running one starts.
        void Ran(int vcpu, ulong icount)
        {
            var state = StateOf(vcpu);
            if (state.RunningSince != null) return;
            if (state.StoppedAt is ulong at)
                events.Add(Instant(state.StoppedAs, "vcpu", at, RunStateTid(vcpu), new JsonObject { ["woken_at_icount"] = icount }));
            state.StoppedAt = null;
            state.RunningSince = icount;
        }

        // vCPU `vcpu` blocked (sched_op block or poll) or was taken down at `icount`: its running period ends.
        void Stop(int vcpu, ulong icount, string how)
        {
            var state = StateOf(vcpu);
            if (state.RunningSince is not ulong since) return;
            events.Add(Slice("running", "vcpu", since, Math.Max(1, (double)(icount - since)), RunStateTid(vcpu), null));
            state.RunningSince = null;
            state.StoppedAt = icount;
            state.StoppedAs = how;
        }

        RunState StateOf(int vcpu)
        {
            if (vcpus.TryGetValue(vcpu, out var state)) return state;
            events.Add(Meta("thread_name", HypercallTid(vcpu), $"vcpu{vcpu} hypercalls"));
            events.Add(Meta("thread_name", RunStateTid(vcpu), $"vcpu{vcpu} running / blocked"));
            return vcpus[vcpu] = new RunState();
        }
    }

    /// <summary>One vCPU's state while the events are read: running since a count, or stopped (blocked or down) at one.</summary>
    private sealed class RunState
    {
        public ulong? RunningSince;
        public ulong? StoppedAt;
        public string StoppedAs = "blocked";
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
