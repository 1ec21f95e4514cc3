using System.CommandLine;
using Replayvisor.Cli.Bench;
using Replayvisor.Cli.Commands;
using Replayvisor.Cli.Completion;
using Replayvisor.Cli.Help;
using Replayvisor.Engine.Session;
using Replayvisor.Replay.Text;

namespace Replayvisor.Cli;

/// <summary>The `replayvisor` command line: parsing, dispatch and the one-line error contract.</summary>
public static class CliApp
{
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var root = Build(stdout, stderr);
        // Shell completion ([suggest:N] "line", from `replayvisor completion bash|zsh`) never prints errors.
        if (ShellCompletion.IsRequest(args)) return ShellCompletion.Answer(root, args, stdout);
        ParseResult parsed = root.Parse(args);
        if (parsed.Errors.Count > 0 && !CommandTree.IsHelp(parsed))
        {
            stderr.WriteLine($"replayvisor: {OneLine(string.Join("; ", parsed.Errors.Select(e => e.Message).Distinct()))} (try 'replayvisor --help')");
            return ExitCodes.Usage;
        }
        try
        {
            return parsed.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false });
        }
        catch (CliException e)
        {
            return Fail(stdout, stderr, e.ExitCode, OneLine(e.Message));
        }
        catch (IOException e)
        {
            // A read or write the operating system refused (disk full, a file changed under us, a closed output).
            return Fail(stdout, stderr, ExitCodes.IoError, $"I/O error: {OneLine(e.Message)}");
        }
        catch (UnauthorizedAccessException e)
        {
            // .NET's word for EBADF and EACCES: e.g. a write to a closed standard output (`>&-`).
            return Fail(stdout, stderr, ExitCodes.IoError, $"I/O error: {OneLine(e.Message)}");
        }
        catch (Exception e)
        {
            return Fail(stdout, stderr, ExitCodes.Internal, $"internal error: {e.GetType().Name}: {FirstLine(e.Message)}");
        }
    }

    private static int Fail(TextWriter stdout, TextWriter stderr, int code, string message)
    {
        // stdout may be what failed; stderr may be closed (`2>&-`): the exit code still says what happened.
        try { stdout.Flush(); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        try { stderr.WriteLine($"replayvisor: {message}"); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return code;
    }

    private static string FirstLine(string s) => s.Split('\n')[0].Trim();

    /// <summary>Errors are one line: newlines and tabs inside a message become spaces.</summary>
    private static string OneLine(string s) =>
        string.Join(' ', s.Split(['\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    /// <summary>The command tree, with `help` and `completion` and the examples in every --help.</summary>
    public static RootCommand Build(TextWriter stdout, TextWriter stderr)
    {
        var root = new RootCommand("Replayvisor: record and replay 32-bit x86 Xen PV guests bit-exactly.");
        root.Subcommands.Add(RunCmd(stdout, stderr));
        root.Subcommands.Add(RecordCmd(stdout, stderr));
        root.Subcommands.Add(ReplayCmd(stderr));
        root.Subcommands.Add(IndexCmd(stderr));
        root.Subcommands.Add(InfoCmd(stdout));
        root.Subcommands.Add(DumpCmd(stdout, stderr));
        root.Subcommands.Add(DiffCmd(stdout));
        root.Subcommands.Add(ExportCmd(stdout, stderr));
        root.Subcommands.Add(BenchCmd(stdout));
        root.Subcommands.Add(DebugCmd(stdout, stderr));
        root.Subcommands.Add(GdbServerCmd(stderr));
        return CommandTree.Finish(root.WithExample("replayvisor run guests/build/hello.elf"));
    }

    private sealed class RunOptions
    {
        public readonly Argument<string> Kernel = new Argument<string>("kernel") { Description = "A Xen PV guest kernel (ELF)", HelpName = "kernel.elf" }.CompletesFiles(".elf").NoEmptyPath();
        public readonly Option<uint> Memory = new("--memory") { Description = "Guest memory in MiB", DefaultValueFactory = _ => 32 };
        public readonly Option<string> Cmdline = new("--cmdline") { Description = "Guest command line", DefaultValueFactory = _ => "" };
        public readonly Option<bool> InitDomain = new("--initdomain") { Description = "Build the initial domain (SIF_INITDOMAIN|SIF_PRIVILEGED)" };
        public readonly Option<ulong> MaxInstructions = new("--max-instructions") { Description = "Stop after this many instructions (exit code 4)", DefaultValueFactory = _ => ulong.MaxValue };
        public readonly Option<bool> Stats = new("--stats") { Description = "Print instructions, MIPS, hypercalls and exceptions to stderr" };
        public readonly Option<bool> Json = new("--json") { Description = "Print those figures as one JSON document on stdout, the guest's console inside it" };
        public readonly Option<string> Xen = new("--xen") { Description = "The Xen the guest sees: 3.1, 4.19 (the compat ABI of 64-bit Xen), or auto (4.19 for PAE kernels, 3.1 for non-PAE)", DefaultValueFactory = _ => "auto" };
        public readonly Option<string> ConsoleView = new("--console") { Description = "Console shown: ring (PV console), hypervisor (console_io), both, or auto (the ring once used, console_io before)", DefaultValueFactory = _ => "auto" };
        public readonly Option<int> Vcpus = new("--vcpus") { Description = "vCPUs of the domain (1-32), scheduled one at a time by instruction-count quanta", DefaultValueFactory = _ => 1 };

        public RunOptions()
        {
            Xen.AcceptOnlyFromAmong(Engine.Xen.XenAbis.Names);
            ConsoleView.AcceptOnlyFromAmong(Engine.Xen.ConsoleViews.Names);
        }

        public void AddTo(Command c)
        {
            c.Arguments.Add(Kernel);
            c.Options.Add(Memory); c.Options.Add(Cmdline); c.Options.Add(InitDomain); c.Options.Add(MaxInstructions); c.Options.Add(Stats); c.Options.Add(Json);
            c.Options.Add(Xen); c.Options.Add(ConsoleView); c.Options.Add(Vcpus);
        }

        public RunArgs Get(ParseResult p)
        {
            Engine.Xen.XenAbis.TryParse(p.GetValue(Xen), out var abi);
            Engine.Xen.ConsoleViews.TryParse(p.GetValue(ConsoleView), out var view);
            return new(p.GetValue(Kernel)!, p.GetValue(Memory), p.GetValue(Cmdline) ?? "", p.GetValue(InitDomain), p.GetValue(MaxInstructions), p.GetValue(Stats), p.GetValue(Json))
            { Xen = abi, Console = view, Vcpus = p.GetValue(Vcpus) };
        }
    }

    private static Command RunCmd(TextWriter stdout, TextWriter stderr)
    {
        var o = new RunOptions();
        var cmd = new Command("run", "Run a guest kernel; its console goes to stdout").WithExample("replayvisor run guests/build/hello.elf --stats");
        o.AddTo(cmd);
        cmd.SetAction(p => GuestCommands.Run(o.Get(p), stdout, stderr));
        return cmd;
    }

    private static Command RecordCmd(TextWriter stdout, TextWriter stderr)
    {
        var o = new RunOptions();
        var output = new Option<string>("--output", "-o") { Description = "The trace file to write", Required = true, HelpName = "trace.rvt" }.NoEmptyPath().CompletesFiles(".rvt");
        var clock = new Option<string>("--clock") { Description = "virtual (default) or host", DefaultValueFactory = _ => "virtual" };
        clock.AcceptOnlyFromAmong("virtual", "host");
        var chaos = new Option<int?>("--chaos") { Description = "Chaos mode: randomised legal delays of timers and input, from this seed" };
        var interval = new Option<ulong>("--checkpoint-interval") { Description = "Instructions between state-hash checkpoints (0: none)", DefaultValueFactory = _ => 10_000_000 };
        var data = new Option<bool>("--hypercall-data") { Description = "Also record the bytes each hypercall writes into guest memory (a digest is always recorded)" };
        var keyframes = new Option<ulong>("--keyframe-interval") { Description = $"Then add a keyframe every N instructions (as `index` does; at least {IndexCommand.MinInterval}; 0: none)", HelpName = "N" };
        var cmd = new Command("record", "Run a guest kernel and record its run into a trace") { output, clock, chaos, interval, data, keyframes };
        cmd.WithExample("replayvisor record guests/build/sched-pae.elf -o sched.rvt --clock host --chaos 7");
        o.AddTo(cmd);
        cmd.SetAction(p =>
        {
            // Checked before the guest runs: a refused interval must not cost a recording.
            if (p.GetValue(keyframes) is > 0 and var k) IndexCommand.CheckInterval(k, "--keyframe-interval");
            int code = GuestCommands.Record(o.Get(p), p.GetValue(output)!, p.GetValue(clock) == "host" ? ClockKind.Host : ClockKind.Virtual,
                p.GetValue(chaos), p.GetValue(interval), stdout, stderr, p.GetValue(data));
            // Keyframes are made by replaying the finished trace (docs/time-travel.md "Keyframes"); the recording's own exit code stands.
            if (p.GetValue(keyframes) is > 0 and var n && code != ExitCodes.Interrupted) IndexCommand.Run(p.GetValue(output)!, n, null, stderr);
            return code;
        });
        return cmd;
    }

    private static Command IndexCmd(TextWriter stderr)
    {
        var trace = TraceArg();
        var interval = new Option<ulong>("--interval") { Description = $"Instructions between keyframes (at least {IndexCommand.MinInterval})", DefaultValueFactory = _ => IndexCommand.DefaultInterval, HelpName = "N" };
        var output = new Option<string?>("--output", "-o") { Description = "Write the indexed trace here instead of replacing the original", HelpName = "out.rvt" }.NoEmptyPath();
        var cmd = new Command("index", "Add keyframes to a trace so that seeking (debug, gdbserver, goto) starts near its target") { trace, interval, output };
        cmd.WithExample("replayvisor index sched.rvt --interval 10000000");
        cmd.SetAction(p => IndexCommand.Run(p.GetValue(trace)!, p.GetValue(interval), p.GetValue(output), stderr));
        return cmd;
    }

    private static Command ReplayCmd(TextWriter stderr)
    {
        var trace = TraceArg();
        var to = new Option<ulong?>("--to") { Description = "Stop (verified) at this instruction count" };
        var quiet = new Option<bool>("--quiet") { Description = "Do not print the guest's console output" };
        var cmd = new Command("replay", "Re-execute a trace and verify it is bit-exact (exit 10 at the first divergence)") { trace, to, quiet };
        cmd.WithExample("replayvisor replay sched.rvt --quiet");
        cmd.SetAction(p => ReplayCommand.Run(p.GetValue(trace)!, p.GetValue(to), p.GetValue(quiet), stderr));
        return cmd;
    }

    private static Option<uint> SnapshotMemoryOption() => new("--snapshot-memory")
    {
        Description = "MiB the snapshot ladder may use for going backwards",
        DefaultValueFactory = _ => Replay.TimeTravel.TimeTravelOptions.DefaultSnapshotMemoryMiB,
    };

    private static Command DebugCmd(TextWriter stdout, TextWriter stderr)
    {
        var trace = TraceArg();
        var batch = new Option<string?>("--batch") { Description = "Run the commands in this file (one per line) instead of reading them interactively" }.NoEmptyPath();
        var memory = SnapshotMemoryOption();
        var cmd = new Command("debug", "Debug a trace forwards and backwards (stepi, continue, reverse-*, break, watch, x/, goto, when)") { trace, batch, memory };
        cmd.WithExample("replayvisor debug sched.rvt --batch commands.txt");
        cmd.SetAction(p => Debug.DebugCommand.Run(p.GetValue(trace)!, p.GetValue(batch), p.GetValue(memory), stdout, stderr));
        return cmd;
    }

    private static Command GdbServerCmd(TextWriter stderr)
    {
        var trace = TraceArg();
        var port = new Option<int>("--port") { Description = "TCP port on 127.0.0.1 (0: any free port, printed on stderr)", DefaultValueFactory = _ => 0 };
        var memory = SnapshotMemoryOption();
        var log = new Option<bool>("--log") { Description = "Print every packet gdb sends on stderr" };
        var cmd = new Command("gdbserver", "Serve a trace to gdb over the remote protocol, with reverse execution") { trace, port, memory, log };
        cmd.WithExample("replayvisor gdbserver sched.rvt --port 1234");
        cmd.SetAction(p => Gdb.GdbServerCommand.Run(p.GetValue(trace)!, p.GetValue(port), p.GetValue(memory), stderr, p.GetValue(log)));
        return cmd;
    }

    private static Argument<string> TraceArg() => new Argument<string>("trace") { Description = "A .rvt trace file", HelpName = "trace.rvt" }.CompletesFiles(".rvt").NoEmptyPath();

    private static Command InfoCmd(TextWriter stdout)
    {
        var trace = TraceArg();
        var json = new Option<bool>("--json") { Description = "Print JSON" };
        var cmd = new Command("info", "Show a trace's header, guest, options, event counts and sizes") { trace, json };
        cmd.WithExample("replayvisor info sched.rvt --json");
        cmd.SetAction(p => InfoCommand.Run(p.GetValue(trace)!, p.GetValue(json), stdout));
        return cmd;
    }

    private static Command DumpCmd(TextWriter stdout, TextWriter stderr)
    {
        var trace = TraceArg();
        var kind = new Option<string[]>("--kind") { HelpName = "kind", Description = "Only events of these kinds: " + string.Join(", ", EventText.Kinds), AllowMultipleArgumentsPerToken = true };
        kind.CompletionSources.Add(EventText.Kinds);
        var from = new Option<ulong>("--from") { Description = "First instruction count (inclusive)" };
        var to = new Option<ulong>("--to") { Description = "Last instruction count (inclusive; not before --from)", DefaultValueFactory = _ => ulong.MaxValue };
        var json = new Option<bool>("--json") { Description = "One JSON object per line" };
        var cmd = new Command("dump", "Print a trace's events, one per line") { trace, kind, from, to, json };
        cmd.WithExample("replayvisor dump sched.rvt --kind hypercall upcall --to 1000000");
        cmd.SetAction(p => DumpCommand.Run(p.GetValue(trace)!, p.GetValue(kind) ?? [], p.GetValue(from), p.GetValue(to), p.GetValue(json), stdout, stderr));
        return cmd;
    }

    private static Command ExportCmd(TextWriter stdout, TextWriter stderr)
    {
        var trace = new Argument<string>("trace") { Description = "A .rvt trace file" }.NoEmptyPath().CompletesFiles(".rvt");
        var format = new Option<string>("--format") { Description = "perfetto: Chrome trace-event JSON for the Perfetto UI", DefaultValueFactory = _ => "perfetto" };
        format.CompletionSources.Add("perfetto");
        var output = new Option<string>("--output", "-o") { Description = "The JSON file to write (-: standard output)", Required = true, HelpName = "run.json" }.NoEmptyPath().CompletesFiles(".json");
        var cmd = new Command("export", "Write a trace as a guest-time timeline (hypercalls, upcalls, exceptions, console, checkpoints)") { trace, format, output };
        cmd.WithExample("replayvisor export sched.rvt --format perfetto -o run.json");
        cmd.SetAction(p => ExportCommand.Run(p.GetValue(trace)!, p.GetValue(format)!, p.GetValue(output)!, stdout, stderr));
        return cmd;
    }

    private static Command DiffCmd(TextWriter stdout)
    {
        var a = new Argument<string>("a") { Description = "The first trace (.rvt)" }.NoEmptyPath().CompletesFiles(".rvt");
        var b = new Argument<string>("b") { Description = "The second trace (.rvt)" }.NoEmptyPath().CompletesFiles(".rvt");
        var json = new Option<bool>("--json") { Description = "Print one JSON document (schema: docs/diff.md)" };
        var context = new Option<int>("--context") { Description = "Equal events shown around each difference", DefaultValueFactory = _ => 3 };
        var noPinpoint = new Option<bool>("--no-pinpoint") { Description = "Same guest image: do not re-execute the runs to find the first differing instruction" };
        var cmd = new Command("diff", "Compare two traces: where the runs part ways (exit 0 same, 1 different; one run ending early and agreeing up to there: 12 an incomplete trace, 15 stopped by its recorder)") { a, b, json, context, noPinpoint };
        cmd.WithExample("replayvisor diff variant-a.rvt variant-b.rvt --context 5");
        cmd.SetAction(p => DiffCommand.Run(p.GetValue(a)!, p.GetValue(b)!, p.GetValue(json), p.GetValue(context), !p.GetValue(noPinpoint), stdout));
        return cmd;
    }

    private static Command BenchCmd(TextWriter stdout)
    {
        var n = new Option<ulong>("--instructions") { Description = "Instructions per round (at least 10,000; the interpreter runs a tenth)", DefaultValueFactory = _ => 200_000_000 };
        var rounds = new Option<int>("--rounds") { Description = "Rounds (the best is reported)", DefaultValueFactory = _ => 3 };
        var guest = new Option<string?>("--guest") { HelpName = "kernel.elf", Description = "Instead: run, record and replay this guest kernel and report overhead, speed and trace size" }.NoEmptyPath().CompletesFiles(".elf");
        var interval = new Option<ulong>("--checkpoint-interval") { Description = "Checkpoint interval for --guest", DefaultValueFactory = _ => 10_000_000 };
        var json = new Option<bool>("--json") { Description = "Print the figures as one JSON document" };
        var trace = new Option<string?>("--trace") { HelpName = "trace.rvt", Description = "Instead: time-travel figures for this trace (replay with and without the snapshot ladder, reverse-stepi at the end (--rounds steps), goto from a fresh session)" }.NoEmptyPath().CompletesFiles(".rvt");
        var rssBaseline = new Option<string?>("--rss-baseline") { HelpName = "small.rvt", Description = "With --trace: also replay this (shorter) trace and the --trace one each in a process of its own and compare their peak RSS" }.NoEmptyPath();
        var peakRss = new Option<bool>("--peak-rss") { Hidden = true, Description = "With --trace: only replay it and print this process's peak RSS (used by --rss-baseline)" };
        var diff = new Option<string[]>("--diff") { HelpName = "A.rvt B.rvt", Description = "Instead: `diff` figures for two traces (the event diff's time; the pinpoint's cost at 1, 10 and 100 times their checkpoint interval, from keyframes and from 0 when they have keyframes)", Arity = new ArgumentArity(2, 2), AllowMultipleArgumentsPerToken = true }.NoEmptyPath().CompletesFiles(".rvt");
        var maxInstructions = new Option<ulong>("--max-instructions")
        {
            Description = "With --guest: a run of the guest that reaches this many instructions is an error (exit 4): bench measures runs that end",
            DefaultValueFactory = _ => GuestBench.DefaultMaxInstructions, HelpName = "N",
        };
        var cmd = new Command("bench", "Measure CPU speed (MIPS) on an integer workload with paging on, or record/replay figures for a guest") { n, rounds, guest, interval, maxInstructions, json, trace, rssBaseline, peakRss, diff };
        cmd.WithExample("replayvisor bench --guest guests/build/sched-pae.elf --rounds 1");
        // Which bench each option belongs to ("" is the CPU bench, without --guest, --trace or --diff): an option
        // given to a bench it does nothing in is refused, not ignored, as is a second bench.
        (Option Option, string[] Benches)[] belongs =
        [
            (n, [""]), (rounds, ["", "--guest", "--trace"]), (interval, ["--guest"]), (maxInstructions, ["--guest"]),
            (rssBaseline, ["--trace"]), (peakRss, ["--trace"]),
        ];
        cmd.SetAction(p =>
        {
            BenchModes.Check(p, [guest, trace, diff], belongs);
            return p.GetValue(diff) is [var da, var db]
                ? DiffBench.Run(da, db, p.GetValue(json), stdout)
                : p.GetValue(trace) is { } t
                ? (p.GetValue(peakRss) ? TimeTravelBench.PrintPeakRss(t, stdout) : TimeTravelBench.Run(t, p.GetValue(rounds), p.GetValue(rssBaseline), p.GetValue(json), stdout))
                : p.GetValue(guest) is { } g
                ? GuestBench.Run(g, p.GetValue(rounds), p.GetValue(interval), p.GetValue(json), stdout, p.GetValue(maxInstructions))
                : BenchCommand.Run(p.GetValue(n), p.GetValue(rounds), p.GetValue(json), stdout);
        });
        return cmd;
    }
}
