using System.CommandLine;
using Replayvisor.Cli.Bench;
using Replayvisor.Cli.Commands;

namespace Replayvisor.Cli;

/// <summary>The `replayvisor` command line: parsing, dispatch and the one-line error contract.</summary>
public static class CliApp
{
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var root = Build(stdout, stderr);
        ParseResult parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
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
            stdout.Flush();
            stderr.WriteLine($"replayvisor: {OneLine(e.Message)}");
            return e.ExitCode;
        }
        catch (Exception e)
        {
            stdout.Flush();
            stderr.WriteLine($"replayvisor: internal error: {e.GetType().Name}: {FirstLine(e.Message)}");
            return ExitCodes.Internal;
        }
    }

    private static string FirstLine(string s) => s.Split('\n')[0].Trim();

    /// <summary>Errors are one line: newlines and tabs inside a message become spaces.</summary>
    private static string OneLine(string s) =>
        string.Join(' ', s.Split(['\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    private static RootCommand Build(TextWriter stdout, TextWriter stderr)
    {
        var root = new RootCommand("Replayvisor: record and replay 32-bit x86 Xen PV guests bit-exactly.");
        root.Subcommands.Add(RunCmd(stderr));
        root.Subcommands.Add(RecordCmd(stderr));
        root.Subcommands.Add(ReplayCmd(stderr));
        root.Subcommands.Add(InfoCmd(stdout));
        root.Subcommands.Add(DumpCmd(stdout));
        root.Subcommands.Add(BenchCmd(stdout));
        return root;
    }

    private sealed class RunOptions
    {
        public readonly Argument<string> Kernel = new("kernel") { Description = "A Xen PV guest kernel (ELF)" };
        public readonly Option<uint> Memory = new("--memory") { Description = "Guest memory in MiB", DefaultValueFactory = _ => 32 };
        public readonly Option<string> Cmdline = new("--cmdline") { Description = "Guest command line", DefaultValueFactory = _ => "" };
        public readonly Option<bool> InitDomain = new("--initdomain") { Description = "Build the initial domain (SIF_INITDOMAIN|SIF_PRIVILEGED)" };
        public readonly Option<ulong> MaxInstructions = new("--max-instructions") { Description = "Stop after this many instructions (exit code 4)", DefaultValueFactory = _ => ulong.MaxValue };
        public readonly Option<bool> Stats = new("--stats") { Description = "Print instructions, MIPS, hypercalls and exceptions to stderr" };
        public readonly Option<string> Xen = new("--xen") { Description = "The Xen the guest sees: 3.1, 4.19 (the compat ABI of 64-bit Xen), or auto (4.19 for PAE kernels, 3.1 for non-PAE)", DefaultValueFactory = _ => "auto" };
        public readonly Option<string> ConsoleView = new("--console") { Description = "Console shown: ring (PV console), hypervisor (console_io), both, or auto (the ring once used, console_io before)", DefaultValueFactory = _ => "auto" };

        public RunOptions()
        {
            Xen.AcceptOnlyFromAmong(Engine.Xen.XenAbis.Names);
            ConsoleView.AcceptOnlyFromAmong(Engine.Xen.ConsoleViews.Names);
        }

        public void AddTo(Command c)
        {
            c.Arguments.Add(Kernel);
            c.Options.Add(Memory); c.Options.Add(Cmdline); c.Options.Add(InitDomain); c.Options.Add(MaxInstructions); c.Options.Add(Stats);
            c.Options.Add(Xen); c.Options.Add(ConsoleView);
        }

        public RunArgs Get(ParseResult p)
        {
            Engine.Xen.XenAbis.TryParse(p.GetValue(Xen), out var abi);
            Engine.Xen.ConsoleViews.TryParse(p.GetValue(ConsoleView), out var view);
            return new(p.GetValue(Kernel)!, p.GetValue(Memory), p.GetValue(Cmdline) ?? "", p.GetValue(InitDomain), p.GetValue(MaxInstructions), p.GetValue(Stats))
            { Xen = abi, Console = view };
        }
    }

    private static Command RunCmd(TextWriter stderr)
    {
        var o = new RunOptions();
        var cmd = new Command("run", "Run a guest kernel; its console goes to stdout");
        o.AddTo(cmd);
        cmd.SetAction(p => GuestCommands.Run(o.Get(p), stderr));
        return cmd;
    }

    private static Command RecordCmd(TextWriter stderr)
    {
        var o = new RunOptions();
        var output = new Option<string>("--output", "-o") { Description = "The trace file to write", Required = true };
        var clock = new Option<string>("--clock") { Description = "virtual (default) or host", DefaultValueFactory = _ => "virtual" };
        clock.AcceptOnlyFromAmong("virtual", "host");
        var chaos = new Option<int?>("--chaos") { Description = "Chaos mode: randomised legal delays of timers and input, from this seed" };
        var interval = new Option<ulong>("--checkpoint-interval") { Description = "Instructions between state-hash checkpoints (0: none)", DefaultValueFactory = _ => 10_000_000 };
        var cmd = new Command("record", "Run a guest kernel and record its run into a trace") { output, clock, chaos, interval };
        o.AddTo(cmd);
        cmd.SetAction(p => GuestCommands.Record(o.Get(p), p.GetValue(output)!, p.GetValue(clock) == "host" ? Record.ClockKind.Host : Record.ClockKind.Virtual,
            p.GetValue(chaos), p.GetValue(interval), stderr));
        return cmd;
    }

    private static Command ReplayCmd(TextWriter stderr)
    {
        var trace = TraceArg();
        var to = new Option<ulong?>("--to") { Description = "Stop (verified) at this instruction count" };
        var quiet = new Option<bool>("--quiet") { Description = "Do not print the guest's console output" };
        var cmd = new Command("replay", "Re-execute a trace and verify it is bit-exact (exit 10 at the first divergence)") { trace, to, quiet };
        cmd.SetAction(p => ReplayCommand.Run(p.GetValue(trace)!, p.GetValue(to), p.GetValue(quiet), stderr));
        return cmd;
    }

    private static Argument<string> TraceArg() => new("trace") { Description = "A .rvt trace file" };

    private static Command InfoCmd(TextWriter stdout)
    {
        var trace = TraceArg();
        var json = new Option<bool>("--json") { Description = "Print JSON" };
        var cmd = new Command("info", "Show a trace's header, guest, options, event counts and sizes") { trace, json };
        cmd.SetAction(p => InfoCommand.Run(p.GetValue(trace)!, p.GetValue(json), stdout));
        return cmd;
    }

    private static Command DumpCmd(TextWriter stdout)
    {
        var trace = TraceArg();
        var kind = new Option<string[]>("--kind") { Description = "Only events of these kinds: " + string.Join(", ", EventText.Kinds), AllowMultipleArgumentsPerToken = true };
        var from = new Option<ulong>("--from") { Description = "First instruction count" };
        var to = new Option<ulong>("--to") { Description = "Last instruction count", DefaultValueFactory = _ => ulong.MaxValue };
        var json = new Option<bool>("--json") { Description = "One JSON object per line" };
        var cmd = new Command("dump", "Print a trace's events, one per line") { trace, kind, from, to, json };
        cmd.SetAction(p => DumpCommand.Run(p.GetValue(trace)!, p.GetValue(kind) ?? [], p.GetValue(from), p.GetValue(to), p.GetValue(json), stdout));
        return cmd;
    }

    private static Command BenchCmd(TextWriter stdout)
    {
        var n = new Option<ulong>("--instructions") { Description = "Instructions per round", DefaultValueFactory = _ => 200_000_000 };
        var rounds = new Option<int>("--rounds") { Description = "Rounds (the best is reported)", DefaultValueFactory = _ => 3 };
        var guest = new Option<string?>("--guest") { Description = "Instead: run, record and replay this guest kernel and report overhead, speed and trace size" };
        var interval = new Option<ulong>("--checkpoint-interval") { Description = "Checkpoint interval for --guest", DefaultValueFactory = _ => 10_000_000 };
        var cmd = new Command("bench", "Measure CPU speed (MIPS) on an integer workload with paging on, or record/replay figures for a guest") { n, rounds, guest, interval };
        cmd.SetAction(p => p.GetValue(guest) is { } g
            ? GuestBench.Run(g, p.GetValue(rounds), p.GetValue(interval), stdout)
            : BenchCommand.Run(p.GetValue(n), p.GetValue(rounds), stdout));
        return cmd;
    }
}
