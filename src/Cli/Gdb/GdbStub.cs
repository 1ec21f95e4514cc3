using System.Globalization;
using System.Text;
using Replayvisor.Replay.Stepping;
using Replayvisor.Replay.TimeTravel;

namespace Replayvisor.Cli.Gdb;

/// <summary>
/// Answers gdb's remote-protocol packets from a <see cref="TimeTravelSession"/> (docs/gdbserver.md):
/// registers and memory as the replay has them, breakpoints and watchpoints, forward (c, s,
/// vCont) and reverse (bc, bs) execution, and monitor commands. Writes are refused: a replay
/// cannot change the past. Each vCPU with a context is a thread (id = vCPU id + 1); `Hg` picks whose
/// registers and memory view the reads use; execution moves the whole machine (all-stop), and a
/// step of a thread runs until that vCPU has executed one instruction of its own.
/// </summary>
public sealed class GdbStub
{
    private readonly TimeTravelSession _session;
    private readonly RspConnection _conn;
    private readonly Dictionary<(int Type, uint Address, int Kind), int> _points = [];
    private readonly List<Breakpoint> _breakpoints = [];
    private readonly List<Watchpoint> _watchpoints = [];
    private int _nextId = 1;
    private string _lastStop = "S05";
    /// <summary>The vCPU `Hg` chose (gdb's general thread); null until gdb chooses: the running vCPU.</summary>
    private int? _selected;
    private int _stopVcpu; // the vCPU the last stop reply named
    /// <summary>`Hc`'s vCPU: the thread `s` and `bs` step; null for 0 and -1 (gdb resumes every thread: it steps its current one).</summary>
    private int? _continueVcpu;
    /// <summary>gdb's current thread as the stub sees it: the thread of the last stop reply, or the last `T` asked about (gdb's `thread N` asks it).</summary>
    private int _gdbThread;

    public GdbStub(TimeTravelSession session, RspConnection conn)
    {
        _session = session;
        _conn = conn;
    }

    /// <summary>Serves packets until gdb detaches, kills or disconnects.</summary>
    public void Serve()
    {
        while (_conn.Receive() is { } packet)
        {
            if (packet == "\u0003")
            {
                // Queued behind the run it interrupted (already consumed), or it came while nothing ran: forget it.
                _session.ClearInterrupt();
                continue;
            }
            if (packet is "k") return;
            if (packet.StartsWith("vKill", StringComparison.Ordinal) || packet.StartsWith('D'))
            {
                _conn.Send("OK");
                return;
            }
            string reply = Handle(packet);
            _conn.Send(reply);
            if (packet == "QStartNoAckMode") _conn.NoAck = true;
        }
    }

    private StepConstraints Constraints() => new() { Breakpoints = _breakpoints.ToArray(), Watchpoints = _watchpoints.ToArray() };

    public string Handle(string p)
    {
        if (p.Length == 0) return ""; // "$#00": nothing asked, nothing supported
        switch (p)
        {
            case "?": return _lastStop;
            case "g": return Registers() is { } regs ? RegisterFile.ReadAll(regs) : "E01";
            case "qAttached": return "1";
            case "qC": return "QC" + ThreadId(Selected);
            case "qfThreadInfo": return "m" + string.Join(",", VcpuContexts.Existing(Machine).Select(ThreadId));
            case "qsThreadInfo": return "l";
            case "vCont?": return "vCont;c;C;s;S";
            case "QStartNoAckMode": return "OK";
            case "c": return Resume(() => _session.Step(Constraints()));
            case "s": return Step(SteppedVcpu, others: _continueVcpu == null);
            case "bc": return Resume(() => _session.ReverseContinue(Constraints()));
            case "bs": return ReverseStep(SteppedVcpu, others: _continueVcpu == null);
        }
        if (p.StartsWith("qSupported", StringComparison.Ordinal))
            return "PacketSize=4000;qXfer:features:read+;swbreak+;hwbreak+;ReverseStep+;ReverseContinue+;QStartNoAckMode+;vContSupported+";
        if (p.StartsWith("qXfer:features:read:target.xml:", StringComparison.Ordinal)) return Features(p["qXfer:features:read:target.xml:".Length..]);
        if (p.StartsWith("qXfer:", StringComparison.Ordinal)) return "E00";
        if (p.StartsWith("qSymbol", StringComparison.Ordinal)) return "OK";
        if (p.StartsWith("qThreadExtraInfo,", StringComparison.Ordinal)) return ExtraInfo(p["qThreadExtraInfo,".Length..]);
        if (p.StartsWith('H')) return SetThread(p[1..]);
        if (p.StartsWith('T')) return IsAlive(p[1..]);
        if (p.StartsWith('p')) return ReadRegister(p[1..]);
        if (p.StartsWith('m')) return ReadMemory(p[1..]);
        if (p[0] is 'G' or 'P' or 'M' or 'X') return "E01"; // a replay cannot change the past
        if (p[0] is 'Z' or 'z') return Point(p[0] == 'Z', p[1..]);
        if (p[0] is 'C' or 'S') return p[0] == 'C' ? Resume(() => _session.Step(Constraints())) : Step(SteppedVcpu, others: _continueVcpu == null);
        if (p.StartsWith("vCont;", StringComparison.Ordinal)) return VCont(p["vCont;".Length..]);
        if (p.StartsWith("qRcmd,", StringComparison.Ordinal)) return TryUnhex(p["qRcmd,".Length..], out string command) ? Monitor(command) : "E01";
        return ""; // not supported: the empty reply
    }

    /// <summary>`T t`: OK for a vCPU with a context; gdb asks it when the user selects the thread (`thread N`), so it becomes gdb's current thread here.</summary>
    private string IsAlive(string arg)
    {
        if (!TryThread(arg, out int vcpu) || vcpu < 0 || !VcpuContexts.Exists(Machine, vcpu)) return "E01";
        _gdbThread = vcpu;
        return "OK";
    }

    /// <summary>The vCPU a legacy `s` or `bs` steps: `Hc`'s, or for any/all gdb's current thread (gdb sends `Hc0` and `bs` for reverse-stepi).</summary>
    private int SteppedVcpu => _continueVcpu is int v && VcpuContexts.Exists(Machine, v) ? v : _gdbThread;

    /// <summary>
    /// vCont: the first action for a thread that exists decides. `s:t` steps that thread's vCPU (one
    /// instruction of its own, docs/gdbserver.md "Stepping a thread"), `s` alone gdb's current thread;
    /// with a `c` for the other threads (`vCont;s:t;c`, gdb's stepi) they run meanwhile and their
    /// breakpoints stop the step, without (`vCont;s:t`, gdb stepping a thread over a breakpoint at its
    /// PC) they are not reported. `c` continues.
    /// </summary>
    private string VCont(string actions)
    {
        var list = actions.Split(';', StringSplitOptions.RemoveEmptyEntries);
        bool othersRun = list.Any(a => a is "c" or "C" || a.StartsWith("c:-1", StringComparison.Ordinal) || a.StartsWith('C') && !a.Contains(':'));
        foreach (string action in list)
        {
            char a = action[0];
            int colon = action.IndexOf(':');
            int vcpu = -1;
            if (colon >= 0 && (!TryThread(action[(colon + 1)..], out vcpu) || vcpu >= 0 && !VcpuContexts.Exists(Machine, vcpu))) continue;
            if (a is 's' or 'S') return Step(vcpu >= 0 ? vcpu : _gdbThread, othersRun);
            if (a is 'c' or 'C') return Resume(() => _session.Step(Constraints()));
        }
        return "E01";
    }

    /// <summary>
    /// A forward step of <paramref name="vcpu"/>: on until it has executed one instruction of its own
    /// (or had one delivery), the other vCPUs running meanwhile. The stop names it even when the
    /// instruction switched it out (a blocking sched_op): gdb steps a thread over a breakpoint at its
    /// PC with vCont;s and asserts (infrun.c finish_step_over) when another thread reports the stop.
    /// With <paramref name="others"/>, a breakpoint or watchpoint another vCPU hits first stops there
    /// and names that vCPU, and the end of the trace names the running vCPU, as a continue does.
    /// </summary>
    private string Step(int vcpu, bool others)
    {
        if (!VcpuContexts.Exists(Machine, vcpu)) vcpu = Machine.Hypervisor.CurrentVcpu;
        return Resume(() => _session.StepInstruction(vcpu, others ? Constraints() : null), stop => !others || StepEnded(stop) ? vcpu : null);
    }

    /// <summary>The step itself ended the run (it did not stop for another reason first).</summary>
    private static bool StepEnded(StopInfo stop) => stop.Kind is StopKind.Reached or StopKind.Event or StopKind.Diverged;

    /// <summary>
    /// gdb's reverse-stepi: back before <paramref name="vcpu"/>'s last step; the stop names it. With
    /// <paramref name="others"/> (gdb's `Hc0`: every thread goes back), a breakpoint or watchpoint
    /// another vCPU hit on the way stops there instead and names that vCPU.
    /// </summary>
    private string ReverseStep(int vcpu, bool others)
    {
        if (!VcpuContexts.Exists(Machine, vcpu)) vcpu = Machine.Hypervisor.CurrentVcpu;
        return Resume(() => _session.ReverseStepInstruction(vcpu, others ? Constraints() : null),
            stop => stop.Kind is StopKind.Breakpoint or StopKind.Watchpoint ? null : vcpu);
    }

    private string Resume(Func<StopInfo> run, Func<StopInfo, int?>? stopVcpu = null)
    {
        StopInfo stop;
        try { stop = run(); }
        catch (InvalidOperationException e) { return "E." + e.Message; }
        // The stop reply names the vCPU on the CPU (or, after a step, the vCPU that stepped), and gdb
        // takes it as its general thread from here (the GDB manual, "Stop Reply Packets": thread:;
        // gdb's remote.c records it).
        _stopVcpu = stopVcpu?.Invoke(stop) is int v && VcpuContexts.Exists(Machine, v) ? v : Machine.Hypervisor.CurrentVcpu;
        _selected = _stopVcpu;
        _gdbThread = _stopVcpu;
        _lastStop = StopReply(stop);
        return _lastStop;
    }

    private Replayvisor.Engine.Machine.XenMachine Machine => _session.Replayer.Machine;

    private int Selected => _selected ?? Machine.Hypervisor.CurrentVcpu;

    /// <summary>The selected vCPU's registers; null when it has no context here (a goto went back before its VCPUOP_initialise).</summary>
    private Engine.Cpu.CpuSnapshot? Registers() => VcpuContexts.Registers(Machine, Selected);

    /// <summary>vCPU id → gdb thread id: id + 1 in hex (0 and -1 mean "any" and "all" in the protocol).</summary>
    private static string ThreadId(int vcpu) => (vcpu + 1).ToString("x2", CultureInfo.InvariantCulture);

    private string Thread => $"thread:{ThreadId(_stopVcpu)};";

    /// <summary>A thread id: hex, or -1 (all). Its vCPU (id - 1, so -1 for "any" 0 and -2 for "all").</summary>
    private static bool TryThread(string arg, out int vcpu)
    {
        vcpu = -2;
        if (arg == "-1") return true;
        if (!TryHex(arg, out ulong tid) || tid > int.MaxValue) return false;
        vcpu = (int)tid - 1;
        return true;
    }

    /// <summary>
    /// `Hg` (registers and memory) and `Hc` (the thread a legacy `s` or `bs` steps):
    /// OK for 0 (any), -1 (all) and an existing thread, E01 for any other.
    /// `Hg0`/`Hg-1` pick the running vCPU.
    /// </summary>
    private string SetThread(string arg)
    {
        if (arg.Length == 0 || !TryThread(arg[1..], out int vcpu)) return "E01";
        if (vcpu >= 0 && !VcpuContexts.Exists(Machine, vcpu)) return "E01";
        if (arg[0] == 'g') _selected = vcpu >= 0 ? vcpu : Machine.Hypervisor.CurrentVcpu;
        else if (arg[0] == 'c') _continueVcpu = vcpu >= 0 ? vcpu : null;
        else return "E01";
        return "OK";
    }

    /// <summary>qThreadExtraInfo: "vCPU N (state)" in hex, for gdb's `info threads`.</summary>
    private string ExtraInfo(string arg)
    {
        if (!TryThread(arg, out int vcpu) || !VcpuContexts.Exists(Machine, vcpu)) return "E01";
        return RegisterFile.Hex(Encoding.UTF8.GetBytes($"vCPU {vcpu} ({VcpuContexts.State(Machine, vcpu)})"));
    }

    private string StopReply(StopInfo stop)
    {
        switch (stop.Kind)
        {
            case StopKind.Breakpoint:
                return "T05" + (_points.FirstOrDefault(kv => kv.Value == stop.Breakpoint!.Id).Key.Type == 1 ? "hwbreak:;" : "swbreak:;") + Thread;
            case StopKind.Watchpoint:
                var w = stop.Watch!;
                string kind = w.Watch.Kind switch { WatchKind.Write => "watch", WatchKind.Read => "rwatch", _ => "awatch" };
                return $"T05{kind}:{w.Watch.Address:x};{Thread}";
            case StopKind.EndOfTrace: return "T05replaylog:end;" + Thread;
            case StopKind.BeginningOfTrace: return "T05replaylog:begin;" + Thread;
            case StopKind.Interrupted: return "T02" + Thread;
            case StopKind.Diverged:
                _conn.Send("O" + RegisterFile.Hex(Encoding.UTF8.GetBytes("replayvisor: the replay diverged from the recording here\n")));
                return "T06" + Thread;
            default: return "T05" + Thread;
        }
    }

    private static string Features(string range)
    {
        var parts = range.Split(',');
        if (parts.Length != 2 || !TryHex(parts[0], out ulong offset) || !TryHex(parts[1], out ulong length)) return "E00";
        string xml = TargetDescription.Xml;
        if (offset >= (ulong)xml.Length) return "l";
        int n = (int)Math.Min(length, (ulong)xml.Length - offset);
        return (offset + (ulong)n >= (ulong)xml.Length ? "l" : "m") + xml.Substring((int)offset, n);
    }

    private string ReadRegister(string arg)
    {
        if (!TryHex(arg, out ulong n) || n > int.MaxValue) return "E00";
        if (Registers() is not { } regs) return "E01";
        var bytes = RegisterFile.Read(regs, (int)n);
        return bytes == null ? "E00" : RegisterFile.Hex(bytes);
    }

    private string ReadMemory(string arg)
    {
        var parts = arg.Split(',');
        if (parts.Length != 2 || !TryHex(parts[0], out ulong addr) || !TryHex(parts[1], out ulong len) || addr > uint.MaxValue) return "E01";
        len = Math.Min(len, 0x2000);
        if (VcpuContexts.View(_session.Replayer, Selected) is not { } view) return "E01";
        var bytes = new List<byte>();
        var one = new byte[1];
        for (ulong i = 0; i < len && addr + i <= uint.MaxValue; i++)
        {
            if (!view.TryRead((uint)(addr + i), one)) break;
            bytes.Add(one[0]);
        }
        return bytes.Count == 0 && len > 0 ? "E14" : RegisterFile.Hex(bytes.ToArray());
    }

    private string Point(bool insert, string arg)
    {
        var parts = arg.Split(',');
        if (parts.Length < 3 || !int.TryParse(parts[0], out int type) || type is < 0 or > 4
            || !TryHex(parts[1], out ulong addr) || addr > uint.MaxValue || !TryHex(parts[2].Split(';')[0], out ulong kind)) return "E01";
        var key = (type, (uint)addr, (int)kind);
        if (!insert)
        {
            if (_points.Remove(key, out int id))
            {
                _breakpoints.RemoveAll(b => b.Id == id);
                _watchpoints.RemoveAll(w => w.Id == id);
            }
            return "OK";
        }
        if (_points.ContainsKey(key)) return "OK";
        // Watched memory may be unmapped here (gdb inserts its watchpoints again at every resume, also where
        // a reverse-continue found the range mapped): becoming mapped or unmapped is a change.
        // A range that wraps past 0xffffffff is refused as gdbserver refuses one it cannot watch (E01; gdb then says it could not insert it).
        if (type >= 2 && (kind is < 1 or > Watchpoint.MaxLength || !Watchpoint.Fits((uint)addr, (long)kind))) return "E01";
        int newId = _nextId++;
        _points[key] = newId;
        if (type < 2) _breakpoints.Add(new Breakpoint(newId, addr));
        else _watchpoints.Add(new Watchpoint(newId, (uint)addr, (int)kind, type switch { 2 => WatchKind.Write, 3 => WatchKind.Read, _ => WatchKind.Access }));
        return "OK";
    }

    private string Monitor(string command)
    {
        string output;
        var before = VcpuContexts.Existing(Machine);
        try { output = MonitorCommands.Run(_session, command); }
        catch (MonitorException e) { output = e.Message + "\n"; }
        // A goto back before a vCPU's VCPUOP_initialise leaves its thread without registers. Name every such
        // thread, not only the last Hg one: gdb's current thread need not be it (`info threads` sends Hg for
        // each thread and gdb does not switch back until it needs to).
        var gone = before.Where(v => !VcpuContexts.Exists(Machine, v)).ToList();
        if (gone.Count > 0)
            output += string.Join(", ", gone.Select(v => $"thread {v + 1} (vCPU {v})"))
                + (gone.Count == 1 ? " has" : " have")
                + " no registers at this instruction (not initialised yet); 'thread 1' selects vCPU 0\n";
        _conn.Send("O" + RegisterFile.Hex(Encoding.UTF8.GetBytes(output)));
        return "OK";
    }

    /// <summary>qRcmd's argument: the command's bytes in hex; false when it is not hex.</summary>
    private static bool TryUnhex(string hex, out string text)
    {
        var bytes = new byte[hex.Length / 2];
        bool ok = hex.Length % 2 == 0 && Convert.FromHexString(hex, bytes, out _, out _) == System.Buffers.OperationStatus.Done;
        text = ok ? Encoding.Latin1.GetString(bytes) : "";
        return ok;
    }

    private static bool TryHex(string s, out ulong v) => ulong.TryParse(s, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out v);
}
