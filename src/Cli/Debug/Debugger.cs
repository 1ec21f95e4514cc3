using System.Globalization;
using System.Text;
using Iced.Intel;
using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Trace;
using Replayvisor.Engine.Xen.Hypercalls;
using Replayvisor.Replay.Stepping;
using Replayvisor.Replay.TimeTravel;
using Replayvisor.Replay.Text;

namespace Replayvisor.Cli.Debug;

/// <summary>A command the debugger could not run: one line back to the user, never a crash.</summary>
public sealed class DebugCommandException(string message) : Exception(message);

/// <summary>
/// The `replayvisor debug` command language (docs/time-travel.md "debug"): each line in, text out.
/// Moves (stepi, nexti, continue, their reverse forms, goto) print where they stopped and why.
/// </summary>
public sealed class Debugger
{
    private readonly TimeTravelSession _s;
    private readonly Disassembler _disasm;
    private readonly List<Breakpoint> _breakpoints = [];
    private readonly List<Watchpoint> _watchpoints = [];
    private readonly Dictionary<int, string> _descriptions = [];
    private EventStop _catch = new();
    private int _nextId = 1;

    public Debugger(TimeTravelSession session)
    {
        _s = session;
        _disasm = new Disassembler(session.Symbols);
    }

    public const string Help = """
        moving:    stepi [N] [--vcpu V] (si), nexti [N] (ni), continue (c), goto ICOUNT
                   reverse-stepi [N] [--vcpu V] (rsi), reverse-continue (rc), reverse-finish (rf)
                   (--vcpu V: steps of vCPU V, the others running meanwhile as recorded)
        stopping:  break LOC (b), pbreak PHYSADDR, watch|rwatch|awatch LOC [LEN], delete [ID], info breakpoints
                   catch hypercall [NAME|NUMBER] | upcall | exception [VECTOR] | console | event INDEX; catch clear
        looking:   registers (regs) [--vcpu N], vcpus, x/N[xwbsi] LOC, disassemble [LOC] [N] (disas), when, where, events [N]
        LOC is a symbol, symbol+OFFSET, or an address (0x... hex); quit (q) ends.
        """;

    private Replayvisor.Engine.Machine.XenMachine Machine => _s.Replayer.Machine;
    private X86Cpu Cpu => Machine.Cpu;
    private GuestView View => _s.Replayer.View;

    /// <summary>Runs one command line; returns its output, or null for quit.</summary>
    public string? Execute(string line)
    {
        var words = line.Trim().Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        if (words.Length == 0 || words[0].StartsWith('#')) return "";
        string cmd = words[0];
        string[] args = words[1..];
        if (cmd.StartsWith("x/", StringComparison.Ordinal) || cmd == "x") return Examine(cmd.Length > 2 ? cmd[2..] : "4x", args);
        return cmd switch
        {
            "quit" or "q" or "exit" => null,
            "help" or "h" => Help + "\n",
            "stepi" or "si" => VcpuStep(args, "stepi [N] [--vcpu V]", () => _s.StepInstruction(), v => _s.StepInstruction(v, Constraints())),
            "nexti" or "ni" => Repeat(Count(args), NextInstruction),
            "continue" or "c" => Describe(_s.Step(Constraints())),
            "reverse-stepi" or "rsi" => VcpuStep(args, "reverse-stepi [N] [--vcpu V]", _s.ReverseStepInstruction, v => _s.ReverseStepInstruction(v, Constraints())),
            "reverse-continue" or "rc" => Describe(_s.ReverseContinue(Constraints())),
            "reverse-finish" or "rf" => Describe(Guard(_s.ReverseFinish)),
            "goto" => Describe(_s.Goto(ParseCount(Arg(args, 0, "goto ICOUNT")))),
            "when" => $"{Position(_s)}, event index {_s.EventIndex}\n",
            "break" or "b" => AddBreakpoint(Arg(args, 0, "break LOC"), AddressKind.Linear),
            "pbreak" => AddBreakpoint(Arg(args, 0, "pbreak PHYSADDR"), AddressKind.Physical),
            "watch" => AddWatch(args, WatchKind.Write),
            "rwatch" => AddWatch(args, WatchKind.Read),
            "awatch" => AddWatch(args, WatchKind.Access),
            "delete" or "d" => Delete(args),
            "info" when args.Length > 0 && args[0].StartsWith("b", StringComparison.Ordinal) => ListPoints(),
            "info" when args.Length > 0 && args[0].StartsWith("r", StringComparison.Ordinal) => Registers(args[1..]),
            "info" when args.Length > 0 && args[0] is "vcpus" or "threads" => Vcpus(),
            "registers" or "regs" => Registers(args),
            "vcpus" => Vcpus(),
            "disassemble" or "disas" => Disassemble(args),
            "where" or "around" => Where(),
            "events" => TraceNeighbourhood.Text(_s, args.Length > 0 ? (int)Math.Clamp(ParseCount(args[0]), 1, 1000) : 5),
            "catch" => Catch(args),
            _ => throw new DebugCommandException($"unknown command '{cmd}' (try 'help')"),
        };
    }

    /// <summary>"instruction N", and after deliveries at N, how many (docs/time-travel.md "Position").</summary>
    public static string Position(TimeTravelSession s) =>
        s.Delivered is var d and > 0 ? $"instruction {s.Icount} after {d} {(d == 1 ? "delivery" : "deliveries")}" : $"instruction {s.Icount}";

    private StepConstraints Constraints() => new() { Breakpoints = _breakpoints.ToArray(), Watchpoints = _watchpoints.ToArray(), Events = _catch.IsEmpty ? null : _catch };

    private static StopInfo Guard(Func<StopInfo> f)
    {
        try { return f(); }
        catch (InvalidOperationException e) { throw new DebugCommandException(e.Message); }
    }

    /// <summary>
    /// stepi / reverse-stepi: N steps of the machine, or with --vcpu V of vCPU V (docs/time-travel.md
    /// "debug"): each runs until V has executed one instruction of its own (or had one delivery), the
    /// others meanwhile as the recording scheduled them; their breakpoints and watchpoints stop it,
    /// forwards and back. The stop shows V's next instruction.
    /// </summary>
    private string VcpuStep(string[] args, string usage, Func<StopInfo> machine, Func<int, StopInfo> ofVcpu)
    {
        int at = Array.IndexOf(args, "--vcpu");
        if (at < 0) return args.Length <= 1 ? Repeat(Count(args), machine) : throw new DebugCommandException("usage: " + usage);
        if (at + 1 >= args.Length || args.Length > 3) throw new DebugCommandException("usage: " + usage);
        ulong v = ParseCount(args[at + 1]);
        int count = Machine.Hypervisor.Vcpus.Length;
        if (v >= (ulong)count) throw new DebugCommandException($"no vCPU {v}: the trace has {count} (0 to {count - 1})");
        int vcpu = (int)v;
        if (VcpuContexts.Registers(Machine, vcpu) == null)
            throw new DebugCommandException($"vCPU {v} has no registers here: it is not initialised at instruction {_s.Icount}");
        var rest = args.Where((_, i) => i != at && i != at + 1).ToArray();
        return Repeat(Count(rest), () => ofVcpu(vcpu), vcpu);
    }

    private string Repeat(ulong n, Func<StopInfo> step, int? vcpu = null)
    {
        StopInfo stop = new(StopKind.Reached, _s.Icount);
        for (ulong i = 0; i < n; i++)
        {
            stop = step();
            // A step that stopped after a delivery (the handler's first instruction next) is a step like any other.
            if (stop.Kind is not (StopKind.Reached or StopKind.Event)) break;
        }
        // A step of a vCPU shows that vCPU, unless something else stopped it first (another vCPU's breakpoint).
        if (vcpu is not int v) return Describe(stop);
        if (stop.Kind is StopKind.Reached or StopKind.Event or StopKind.BeginningOfTrace) return Describe(stop, v);
        // Another vCPU's breakpoint or watchpoint: say whose.
        string d = Describe(stop);
        int nl = d.IndexOf('\n');
        return stop.Kind is StopKind.Breakpoint or StopKind.Watchpoint ? d[..nl] + $", hit by vcpu {Machine.Hypervisor.CurrentVcpu}" + d[nl..] : d;
    }

    /// <summary>One instruction, or over a call: on to the return address with the stack back where it was.</summary>
    private StopInfo NextInstruction()
    {
        var cs = Cpu.Segs[Seg.CS];
        var accesses = new InstructionAccesses(Cpu, View);
        if (!accesses.TryDecode(cs.Base + Cpu.Eip, cs.Big, out var insn) || insn.FlowControl is not (FlowControl.Call or FlowControl.IndirectCall))
            return _s.StepInstruction();
        uint esp = Cpu.Esp;
        var back = new Breakpoint(0, (uint)insn.NextIP) { Condition = cpu => cpu.Esp >= esp };
        return _s.Step(Constraints() with { Breakpoints = [.. _breakpoints, back] });
    }

    private string Describe(StopInfo stop) => Describe(stop, null);

    /// <summary>Where the run stopped and why, and the next instruction of <paramref name="vcpu"/> (null: the running vCPU's).</summary>
    private string Describe(StopInfo stop, int? vcpu)
    {
        var w = new StringBuilder();
        string why = stop.Kind switch
        {
            StopKind.Reached => "",
            StopKind.Breakpoint when stop.Breakpoint!.Id == 0 => "",
            StopKind.Breakpoint => $"breakpoint {stop.Breakpoint!.Id} ({_descriptions.GetValueOrDefault(stop.Breakpoint.Id)})",
            StopKind.Watchpoint => $"watchpoint {stop.Watch!.Watch.Id} ({_descriptions.GetValueOrDefault(stop.Watch.Watch.Id)}): {stop.Watch.Access.ToString().ToLowerInvariant()}, {Values(stop.Watch)}",
            StopKind.Event => "event: " + EventText.Text(stop.Event!, _s.Symbols, _s.IretJumpers).TrimStart(),
            StopKind.EndOfTrace => "the end of the trace" + (stop.Exit is { } e ? $" ({e.Kind}: {e.Detail})" : ""),
            StopKind.BeginningOfTrace => "the beginning of the trace",
            StopKind.Diverged => "the replay diverged from the recording: " + _s.Replayer.Verifier.First!.What,
            StopKind.Interrupted => "interrupted",
            _ => stop.Kind.ToString(),
        };
        w.Append($"instruction {_s.Icount}{(why.Length > 0 ? ": " + why : "")}\n");
        if (vcpu is int v && v != Machine.Hypervisor.CurrentVcpu && VcpuContexts.Registers(Machine, v) is { } parked && VcpuContexts.View(_s.Replayer, v) is { } view)
        {
            // Switched out after its step: its next instruction from its parked context, through its own page tables.
            w.Append($"vcpu {v} ({VcpuContexts.State(Machine, v)}):\n");
            var pcs = parked.Segs[Seg.CS];
            foreach (string l in _disasm.Lines(view, pcs.Base + parked.Eip, 1, pcs.Big, pcs.Base + parked.Eip)) w.Append(l).Append('\n');
            return w.ToString();
        }
        var cs = Cpu.Segs[Seg.CS];
        foreach (string l in _disasm.Lines(View, cs.Base + Cpu.Eip, 1, cs.Big, cs.Base + Cpu.Eip)) w.Append(l).Append('\n');
        return w.ToString();
    }

    /// <summary>Old and new value of up to 8 watched bytes; for longer ranges, the first byte that differs.</summary>
    private static string Values(WatchHit hit)
    {
        // The bytes are empty while any of them is unmapped (WatchHit).
        if (hit.Old.Length != hit.New.Length)
            return hit.New.Length == 0 ? "the range became unmapped" + (hit.Watch.Length <= 8 ? $", old 0x{hit.OldValue:x}" : "")
                : "the range became mapped" + (hit.Watch.Length <= 8 ? $", new 0x{hit.NewValue:x}" : "");
        if (hit.Old.Length == 0) return "unmapped";
        if (hit.Watch.Length <= 8) return $"old 0x{hit.OldValue:x} new 0x{hit.NewValue:x}";
        int n = Math.Min(hit.Old.Length, hit.New.Length);
        int at = 0;
        while (at < n && hit.Old[at] == hit.New[at]) at++;
        return at == n ? "unchanged" : $"first change at +{at}: old 0x{hit.Old[at]:x2} new 0x{hit.New[at]:x2}";
    }

    private static ulong Count(string[] args) => args.Length == 0 ? 1 : ParseCount(args[0]);

    private static ulong ParseCount(string s) =>
        ulong.TryParse(s.Replace("_", "").Replace(",", ""), NumberStyles.None, CultureInfo.InvariantCulture, out ulong n)
            ? n : throw new DebugCommandException($"'{s}' is not a count");

    private static string Arg(string[] args, int i, string usage) => i < args.Length ? args[i] : throw new DebugCommandException("usage: " + usage);

    /// <summary>A location: 0x hex address, a decimal address, symbol, or symbol+offset.</summary>
    private uint Location(string text)
    {
        text = text.TrimStart('*');
        int plus = text.IndexOf('+');
        if (plus > 0) return Location(text[..plus]) + Location(text[(plus + 1)..]);
        if (text.StartsWith('$'))
        {
            string reg = text[1..].ToLowerInvariant();
            int r = Array.IndexOf(Reg.Names, reg);
            return r >= 0 ? Cpu.Gpr[r] : reg is "eip" or "pc" ? Cpu.Eip : throw new DebugCommandException($"no register '{text}' (use $eax..$edi, $eip)");
        }
        if (text.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
            return uint.TryParse(text[2..], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out uint a) ? a : throw new DebugCommandException($"'{text}' is not a 32-bit address");
        if (text.Length > 0 && char.IsAsciiDigit(text[0]))
            return uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out uint d) ? d : throw new DebugCommandException($"'{text}' is not a 32-bit address");
        return _s.Symbols.AddressOf(text) is { } sym ? sym : throw new DebugCommandException($"no symbol '{text}' in the guest image");
    }

    private string AddBreakpoint(string loc, AddressKind kind)
    {
        uint a = Location(loc);
        int id = _nextId++;
        _breakpoints.Add(new Breakpoint(id, a, kind));
        _descriptions[id] = kind == AddressKind.Physical ? $"physical 0x{a:x}" : _disasm.Address(a);
        string note = kind == AddressKind.Linear && !View.TryTranslate(a, out _) ? " (not mapped now)" : "";
        return $"breakpoint {id} at {_descriptions[id]}{note}\n";
    }

    private string AddWatch(string[] args, WatchKind kind)
    {
        uint a = Location(Arg(args, 0, "watch LOC [LEN]"));
        ulong length = args.Length > 1 ? ParseCount(args[1]) : 4;
        if (length is < 1 or > Watchpoint.MaxLength) throw new DebugCommandException($"a watchpoint covers 1 to {Watchpoint.MaxLength} bytes");
        if (!Watchpoint.Fits(a, (long)length))
            throw new DebugCommandException($"0x{a:x8} + {length} bytes wraps past 0xffffffff: a watched range must end at 0xffffffff or below");
        int len = (int)length;
        int id = _nextId++;
        _watchpoints.Add(new Watchpoint(id, a, len, kind));
        _descriptions[id] = $"{kind.ToString().ToLowerInvariant()} {len} bytes at {_disasm.Address(a)}";
        // Memory unmapped here can still be watched (as gdbserver's Z2-Z4): becoming mapped or unmapped is a change.
        string note = View.TryRead(a, new byte[len]) ? ""
            : (View.TryTranslate(a, out _) || View.TryTranslate(a + (uint)(len - 1), out _) ? $"0x{a:x8}..0x{a + (uint)(len - 1):x8} is partly unmapped now" : $"0x{a:x8} is not mapped now")
              + (kind == WatchKind.Read ? "\n" : ": the watchpoint also stops where that changes\n");
        return $"watchpoint {id}: {_descriptions[id]}\n{note}";
    }

    private string Delete(string[] args)
    {
        if (args.Length == 0)
        {
            _breakpoints.Clear();
            _watchpoints.Clear();
            return "deleted all breakpoints and watchpoints\n";
        }
        ulong id = ParseCount(args[0]);
        if (_breakpoints.RemoveAll(b => (ulong)b.Id == id) + _watchpoints.RemoveAll(w => (ulong)w.Id == id) == 0)
            throw new DebugCommandException($"no breakpoint or watchpoint {id}");
        return $"deleted {id}\n";
    }

    private string ListPoints()
    {
        var w = new StringBuilder();
        foreach (var b in _breakpoints) w.Append($"{b.Id}: breakpoint {_descriptions[b.Id]}\n");
        foreach (var x in _watchpoints) w.Append($"{x.Id}: watchpoint {_descriptions[x.Id]}\n");
        if (!_catch.IsEmpty) w.Append("catching: ").Append(CatchText()).Append('\n');
        return w.Length == 0 ? "no breakpoints or watchpoints\n" : w.ToString();
    }

    private string Catch(string[] args)
    {
        string what = Arg(args, 0, "catch hypercall [NAME|NUMBER] | upcall | exception [VECTOR] | console | event INDEX | clear");
        _catch = what switch
        {
            "hypercall" when args.Length == 1 => _catch with { AnyHypercall = true },
            "hypercall" => _catch with { Hypercalls = new HashSet<int>(_catch.Hypercalls) { HypercallNumber(args[1]) } },
            "upcall" => _catch with { Upcall = true },
            "exception" when args.Length == 1 => _catch with { AnyException = true },
            "exception" => _catch with { Vectors = new HashSet<int>(_catch.Vectors) { Vector(args[1]) } },
            "console" => _catch with { ConsoleOutput = true },
            "event" => _catch with { EventIndex = ParseCount(Arg(args, 1, "catch event INDEX")) is var k && k <= long.MaxValue ? (long)k : throw new DebugCommandException($"'{args[1]}' is not an event index") },
            "clear" => new EventStop(),
            _ => throw new DebugCommandException($"cannot catch '{what}'"),
        };
        return "catching: " + CatchText() + "\n";
    }

    /// <summary>An exception vector: 0 to 255 (SDM vol. 3 §6.2).</summary>
    private static int Vector(string s) =>
        ParseCount(s) is var v && v <= 255 ? (int)v : throw new DebugCommandException($"'{s}' is not an exception vector (0 to 255)");

    private static int HypercallNumber(string s)
    {
        if (int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out int n)) return n;
        for (int i = 0; i < HypercallTable.NrHypercalls; i++)
            if (HypercallTable.NameOf(i) == s) return i;
        throw new DebugCommandException($"no hypercall named '{s}'");
    }

    private string CatchText()
    {
        var parts = new List<string>();
        if (_catch.AnyHypercall) parts.Add("every hypercall");
        parts.AddRange(_catch.Hypercalls.Select(h => HypercallTable.NameOf(h)));
        if (_catch.Upcall) parts.Add("upcalls");
        if (_catch.AnyException) parts.Add("every exception");
        parts.AddRange(_catch.Vectors.Select(v => $"vector {v}"));
        if (_catch.ConsoleOutput) parts.Add("console output");
        if (_catch.EventIndex is long k) parts.Add($"event #{k}");
        return parts.Count == 0 ? "nothing" : string.Join(", ", parts);
    }

    /// <summary>The running vCPU's registers, or with --vcpu N those of vCPU N (its parked context if it is not running).</summary>
    private string Registers(string[] args)
    {
        if (args.Length == 0) return Registers(Cpu.SaveContext());
        // Anything else than exactly `--vcpu N` is refused: `registers eip --vcpu 1` used to show vCPU 0's.
        if (args.Length != 2 || args[0] != "--vcpu") throw new DebugCommandException("usage: registers [--vcpu N] (it shows every register)");
        ulong n = ParseCount(args[1]);
        int count = Machine.Hypervisor.Vcpus.Length;
        if (n >= (ulong)count) throw new DebugCommandException($"no vCPU {n}: the trace has {count} (0 to {count - 1})");
        var regs = VcpuContexts.Registers(Machine, (int)n)
            ?? throw new DebugCommandException($"vCPU {n} has no registers here: it is not initialised at instruction {_s.Icount}");
        return $"vcpu {n} ({VcpuContexts.State(Machine, (int)n)})\n" + Registers(regs);
    }

    /// <summary>Every vCPU with a context: its state and where it is; * marks the one on the CPU.</summary>
    private string Vcpus()
    {
        var w = new StringBuilder();
        for (int id = 0; id < Machine.Hypervisor.Vcpus.Length; id++)
        {
            var c = VcpuContexts.Registers(Machine, id);
            w.Append($"{(id == Machine.Hypervisor.CurrentVcpu ? '*' : ' ')} vcpu {id} ({VcpuContexts.State(Machine, id)})");
            w.Append(c == null ? "\n" : $"  eip {_disasm.Address(c.Eip)}\n");
        }
        return w.ToString();
    }

    private string Registers(CpuSnapshot c)
    {
        var w = new StringBuilder();
        for (int i = 0; i < 8; i++) w.Append($"{Reg.Names[i],-4}0x{c.Gpr[i]:x8}{(i % 4 == 3 ? "\n" : "  ")}");
        w.Append($"eip 0x{c.Eip:x8} {(_s.Symbols.Name(c.Eip) is { Length: > 0 } sym ? "<" + sym + ">" : "")}\n");
        w.Append($"eflags 0x{c.Eflags:x8}  cpl {c.Cpl}  cr0 0x{c.Cr0:x8}  cr2 0x{c.Cr2:x8}  cr3 0x{c.Cr3:x8}  cr4 0x{c.Cr4:x8}\n");
        for (int i = 0; i < Seg.Count; i++) w.Append($"{Seg.Names[i]} 0x{c.Segs[i].Selector:x4}{(i == Seg.Count - 1 ? "\n" : "  ")}");
        return w.ToString();
    }

    private string Examine(string format, string[] args)
    {
        int i = 0;
        while (i < format.Length && char.IsAsciiDigit(format[i])) i++;
        int count = i > 0 ? (int)Math.Clamp(ParseCount(format[..i]), 1, 4096) : 1;
        char unit = i < format.Length ? format[i] : 'x';
        uint a = Location(Arg(args, 0, "x/N[xwbsi] LOC"));
        if (unit == 'i')
        {
            var lines = _disasm.Lines(View, a, count, Cpu.Segs[Seg.CS].Big);
            return lines.Count == 0 ? throw new DebugCommandException($"0x{a:x8} is not mapped") : string.Join("\n", lines) + "\n";
        }
        if (unit == 's')
        {
            var sb = new StringBuilder();
            var one = new byte[1];
            for (uint k = 0; k < 4096 && View.TryRead(a + k, one) && one[0] != 0; k++) sb.Append(one[0] is >= 0x20 and < 0x7F ? (char)one[0] : '.');
            return $"{_disasm.Address(a)}: \"{sb}\"\n";
        }
        int size = unit == 'b' ? 1 : 4;
        var w = new StringBuilder();
        for (int k = 0; k < count; k++)
        {
            uint at = a + (uint)(k * size);
            if (k % (16 / size) == 0) w.Append(k == 0 ? "" : "\n").Append(_disasm.Address(at)).Append(':');
            if (!View.TryReadValue(at, size, out ulong v))
            {
                if (k == 0) throw new DebugCommandException($"0x{at:x8} is not mapped");
                w.Append(" (unmapped)");
                break;
            }
            w.Append(size == 1 ? $" {v:x2}" : $" 0x{v:x8}");
        }
        return w.Append('\n').ToString();
    }

    private string Disassemble(string[] args)
    {
        var cs = Cpu.Segs[Seg.CS];
        uint pc = cs.Base + Cpu.Eip;
        uint a = args.Length > 0 ? Location(args[0]) : pc;
        int n = args.Length > 1 ? (int)Math.Clamp(ParseCount(args[1]), 1, 1000) : 10;
        var lines = _disasm.Lines(View, a, n, cs.Big, pc);
        return lines.Count == 0 ? throw new DebugCommandException($"0x{a:x8} is not mapped") : string.Join("\n", lines) + "\n";
    }

    /// <summary>The position, the hypercall about to be made (decoded from the registers), pending upcalls, and nearby events.</summary>
    private string Where()
    {
        var w = new StringBuilder($"{Position(_s)}, event index {_s.EventIndex}, at {_disasm.Address(View.Pc)}\n");
        if (HypercallInFlight() is { } call) w.Append("hypercall in flight: ").Append(call).Append('\n');
        var hv = Machine.Hypervisor;
        var pending = hv.Events.PendingUnmaskedPorts();
        int v = hv.CurrentVcpu; // the vCPU on the CPU now: its upcall mask and pending flag
        w.Append($"{(hv.Smp ? $"vcpu {v} " : "")}upcalls: {(hv.SharedInfo.UpcallMask(v) != 0 ? "masked" : "unmasked")}, pending flag {hv.SharedInfo.UpcallPending(v)}, pending ports [{string.Join(", ", pending)}]\n");
        w.Append(TraceNeighbourhood.Text(_s, 3));
        return w.ToString();
    }

    /// <summary>The hypercall the next instruction makes: int 0x82 (number in EAX) or a call into the hypercall page (number from the slot).</summary>
    private string? HypercallInFlight()
    {
        var c = Cpu;
        uint pc = View.Pc;
        int number = -1;
        var b = new byte[2];
        bool read = View.TryRead(pc, b);
        if (_s.Symbols.AddressOf("hypercall_page") is { } page && pc >= page && pc < page + 4096)
        {
            if (read && b[0] == 0xC3) return null; // the stub's ret: its hypercall is done
            number = (int)((pc - page) / 32); // 32-byte slots (docs/xen-abi.md §1)
        }
        else if (read && b[0] == 0xCD && b[1] == 0x82) number = (int)c.Eax;
        if (number < 0) return null;
        uint[] args = [c.Ebx, c.Ecx, c.Edx, c.Esi, c.Edi, c.Ebp];
        return HypercallFormatter.Format(number, args);
    }
}
