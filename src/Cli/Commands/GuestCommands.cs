using System.Runtime.InteropServices;
using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Xen;
using Replayvisor.Record;

namespace Replayvisor.Cli.Commands;

/// <summary>Options shared by `run` and `record`.</summary>
public sealed record RunArgs(string Kernel, uint MemoryMiB, string Cmdline, bool InitDomain, ulong MaxInstructions, bool Stats)
{
    /// <summary>The Xen profile (--xen); null = chosen by the kernel.</summary>
    public XenAbi? Xen { get; init; }
    public ConsoleView Console { get; init; }
}

/// <summary>`replayvisor run` and `replayvisor record`: a live guest run, optionally into a trace.</summary>
public static class GuestCommands
{
    public static int Run(RunArgs a, TextWriter stderr) => Live(a, null, ClockKind.Virtual, null, 0, stderr);

    public static int Record(RunArgs a, string output, ClockKind clock, int? chaos, ulong checkpointInterval, TextWriter stderr) =>
        Live(a, output, clock, chaos, checkpointInterval, stderr);

    private static int Live(RunArgs a, string? output, ClockKind clock, int? chaos, ulong checkpointInterval, TextWriter stderr)
    {
        byte[] kernel = ReadKernel(a.Kernel);
        if (a.MemoryMiB is < 4 or > 2047) throw new CliException(ExitCodes.Usage, $"--memory {a.MemoryMiB}: must be between 4 and 2047 MiB");
        FileStream? trace = null;
        if (output != null)
        {
            // Written in place: a recorder killed outright leaves its complete chunks readable at the path asked for.
            try { trace = new FileStream(output, FileMode.Create, FileAccess.Write, FileShare.Read); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new CliException(ExitCodes.IoError, $"{output}: cannot write: {e.Message}");
            }
        }
        using var stdout = Console.OpenStandardOutput();
        LiveSession session;
        try
        {
            session = new LiveSession(new LiveRequest
            {
                Kernel = kernel,
                ImageName = Path.GetFileName(a.Kernel),
                Machine = new XenMachineOptions
                {
                    MemoryMiB = a.MemoryMiB, CommandLine = a.Cmdline, InitialDomain = a.InitDomain,
                    Hypervisor = new HypervisorOptions { Abi = a.Xen, Console = a.Console },
                },
                MaxInstructions = a.MaxInstructions,
                Clock = clock,
                ChaosSeed = chaos,
                CheckpointInterval = checkpointInterval,
                Trace = trace,
                ConsoleOutput = stdout,
                Stdin = Console.OpenStandardInput(),
                EngineBuild = EngineBuild.Version,
            });
        }
        catch (BootImageException e)
        {
            trace?.Dispose();
            if (output != null) File.Delete(output);
            throw new CliException(ExitCodes.BadKernel, $"{a.Kernel}: {e.Message}");
        }
        LiveResult result;
        using (session)
        {
            ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; session.Stop(); };
            Console.CancelKeyPress += onCancel;
            using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; session.Stop(); });
            try { result = session.Run(); }
            finally { Console.CancelKeyPress -= onCancel; }
        }
        trace?.Dispose();
        if (a.Stats) PrintStats(result, session.Machine, stderr);
        var exit = result.Exit;
        int code = ExitCodeOf(exit.Kind);
        if (code != 0) stderr.WriteLine($"replayvisor: {Describe(exit)}");
        return code;
    }

    public static byte[] ReadKernel(string path)
    {
        try { return File.ReadAllBytes(path); }
        catch (FileNotFoundException) { throw new CliException(ExitCodes.FileNotFound, $"{path}: no such file"); }
        catch (DirectoryNotFoundException) { throw new CliException(ExitCodes.FileNotFound, $"{path}: no such file"); }
        catch (UnauthorizedAccessException) { throw new CliException(ExitCodes.IoError, $"{path}: permission denied"); }
        catch (IOException e) { throw new CliException(ExitCodes.IoError, $"{path}: {e.Message}"); }
    }

    public static int ExitCodeOf(MachineExitKind k) => k switch
    {
        MachineExitKind.PoweredOff => ExitCodes.PoweredOff,
        MachineExitKind.Crashed => ExitCodes.GuestCrashed,
        MachineExitKind.InstructionLimit => ExitCodes.InstructionLimit,
        MachineExitKind.Unsupported => ExitCodes.Unsupported,
        MachineExitKind.Rebooted or MachineExitKind.Suspended => ExitCodes.GuestRebooted,
        MachineExitKind.Idle => ExitCodes.GuestIdle,
        MachineExitKind.Stopped => ExitCodes.Interrupted,
        _ => ExitCodes.Internal,
    };

    public static string Describe(MachineExit e) => e.Kind switch
    {
        MachineExitKind.Crashed => $"the guest crashed at instruction {e.Icount:N0}: {e.Detail}",
        MachineExitKind.InstructionLimit => $"instruction limit reached at {e.Icount:N0}",
        MachineExitKind.Unsupported => $"{e.Detail} (instruction {e.Icount:N0})",
        MachineExitKind.Rebooted => $"the guest asked to reboot at instruction {e.Icount:N0}",
        MachineExitKind.Suspended => $"the guest suspended itself at instruction {e.Icount:N0}",
        MachineExitKind.Idle => $"the guest is blocked with nothing to wake it (instruction {e.Icount:N0})",
        MachineExitKind.Stopped => $"stopped at instruction {e.Icount:N0}",
        _ => e.ToString(),
    };

    private static void PrintStats(LiveResult r, XenMachine m, TextWriter err)
    {
        double secs = Math.Max(r.Elapsed.TotalSeconds, 1e-9);
        err.WriteLine($"instructions retired: {r.Exit.Icount:N0}");
        err.WriteLine($"wall time:            {r.Elapsed.TotalMilliseconds:N1} ms ({r.Exit.Icount / secs / 1e6:F1} MIPS)");
        err.WriteLine("hypercalls:");
        foreach (var kv in m.HypercallStats.OrderByDescending(kv => kv.Value)) err.WriteLine($"  {kv.Key,-30}{kv.Value,12:N0}");
        err.WriteLine("exceptions:");
        foreach (var kv in m.ExceptionStats) err.WriteLine($"  vector {kv.Key,-3} {VectorName(kv.Key),-22}{kv.Value,12:N0}");
        if (r.TraceEvents > 0) err.WriteLine($"trace events:         {r.TraceEvents:N0}");
    }

    private static string VectorName(int v) => v switch
    {
        0 => "#DE", 1 => "#DB", 3 => "#BP", 4 => "#OF", 5 => "#BR", 6 => "#UD", 7 => "#NM", 8 => "#DF", 10 => "#TS",
        11 => "#NP", 12 => "#SS", 13 => "#GP", 14 => "#PF", 16 => "#MF", 17 => "#AC", 19 => "#XM", 0x80 => "int 0x80",
        _ => "",
    };
}

/// <summary>The engine build string recorded in traces.</summary>
public static class EngineBuild
{
    public static string Version => typeof(XenMachine).Assembly.GetName().Version?.ToString() ?? "0";
}
