using System.Runtime.InteropServices;
using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Xen;
using Replayvisor.Record;
using Replayvisor.Engine.Session;

namespace Replayvisor.Cli.Commands;

/// <summary>Options shared by `run` and `record`.</summary>
/// <param name="Json">The report as one JSON document on stdout, the guest's console inside it.</param>
public sealed record RunArgs(string Kernel, uint MemoryMiB, string Cmdline, bool InitDomain, ulong MaxInstructions, bool Stats, bool Json = false)
{
    /// <summary>The Xen profile (--xen); null = chosen by the kernel.</summary>
    public XenAbi? Xen { get; init; }
    public ConsoleView Console { get; init; }
    /// <summary>vCPUs the domain is built with (--vcpus).</summary>
    public int Vcpus { get; init; } = 1;
}

/// <summary>`replayvisor run` and `replayvisor record`: a live guest run, optionally into a trace.</summary>
public static class GuestCommands
{
    public static int Run(RunArgs a, TextWriter stdout, TextWriter stderr) => Live(a, null, ClockKind.Virtual, null, 0, false, stdout, stderr);

    public static int Record(RunArgs a, string output, ClockKind clock, int? chaos, ulong checkpointInterval, TextWriter stdout, TextWriter stderr,
        bool hypercallData = false) =>
        Live(a, output, clock, chaos, checkpointInterval, hypercallData, stdout, stderr);

    private static int Live(RunArgs a, string? output, ClockKind clock, int? chaos, ulong checkpointInterval, bool hypercallData, TextWriter jsonOut, TextWriter stderr)
    {
        if (output != null)
            InputFiles.RefuseStandardOutput(output, "record", "a trace is read back by seeking, and the guest's console goes to standard output");
        byte[] kernel = ReadKernel(a.Kernel);
        // The most that fits in the machine beside Xen's own frames (2045 MiB): more is misuse, not a bad kernel.
        uint maxMiB = MachineFrameMap.MaxGuestMiB(DomainBuildOptions.DefaultSpareXenFrames);
        if (a.MemoryMiB < 4 || a.MemoryMiB > maxMiB) throw new CliException(ExitCodes.Usage, $"--memory {a.MemoryMiB}: must be between 4 and {maxMiB} MiB");
        if (a.Vcpus is < 1 or > HypervisorOptions.MaxVcpus)
            throw new CliException(ExitCodes.Usage, $"--vcpus {a.Vcpus}: must be between 1 and {HypervisorOptions.MaxVcpus}");
        // start_info's command line field holds 1024 bytes with the closing NUL (DomainBuilder): a longer one is misuse, not a bad kernel.
        int cmdlineBytes = System.Text.Encoding.UTF8.GetByteCount(a.Cmdline);
        if (cmdlineBytes >= StartInfo.CmdLineSize)
            throw new CliException(ExitCodes.Usage, $"--cmdline: {cmdlineBytes} bytes: must be at most {StartInfo.CmdLineSize - 1} (start_info's field holds {StartInfo.CmdLineSize} with its NUL)");
        // Ctrl-C and SIGTERM are caught before the trace file exists, so a signal at any moment
        // after start-up closes the trace properly (docs/record-replay.md "Killed and interrupted recorders").
        var stop = new StopRequest();
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; stop.Request(); };
        Console.CancelKeyPress += onCancel;
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Request(); });
        Stream? trace = null;
        LiveResult result;
        LiveSession session;
        // With --json, stdout carries one JSON document: the console is kept for it instead.
        using Stream stdout = a.Json ? new MemoryStream() : new WriteGuard(Console.OpenStandardOutput(), "standard output");
        try
        {
            if (output != null)
            {
                InputFiles.RefuseOverwritingInput(output, a.Kernel, "kernel");
                RefuseBadKernel(a.Kernel, kernel, new DomainBuildOptions { MemoryMiB = a.MemoryMiB, CommandLine = a.Cmdline, InitialDomain = a.InitDomain }, a.Xen);
                // Written in place: a recorder killed outright leaves its complete chunks readable at the path asked for.
                try { trace = new WriteGuard(new FileStream(output, FileMode.Create, FileAccess.Write, FileShare.Read), output); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw InputFiles.CannotWrite(output, e);
                }
            }
            try
            {
                session = new LiveSession(new LiveRequest
                {
                    Kernel = kernel,
                    ImageName = Path.GetFileName(a.Kernel),
                    Machine = new XenMachineOptions
                    {
                        MemoryMiB = a.MemoryMiB, CommandLine = a.Cmdline, InitialDomain = a.InitDomain,
                        Hypervisor = new HypervisorOptions { Abi = a.Xen, Console = a.Console, VcpuCount = a.Vcpus },
                    },
                    MaxInstructions = a.MaxInstructions,
                    Clock = clock,
                    ChaosSeed = chaos,
                    CheckpointInterval = checkpointInterval,
                    HypercallOutputs = hypercallData ? Engine.Session.HypercallOutputLevel.Data : Engine.Session.HypercallOutputLevel.Digest,
                    Trace = trace,
                    ConsoleOutput = stdout,
                    Stdin = Console.OpenStandardInput(),
                    EngineBuild = EngineBuild.Version,
                });
            }
            catch (BootImageException e)
            {
                trace?.Dispose();
                trace = null;
                if (output != null) File.Delete(output);
                throw new CliException(ExitCodes.BadKernel, $"{a.Kernel}: {e.Message}");
            }
            using (session)
            {
                stop.Attach(session);
                result = session.Run();
            }
            trace?.Dispose();
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
            // After a write error the trace stream may fail again while closing; the first error is the one reported.
            try { trace?.Dispose(); } catch (CliException) { }
        }
        var exit = result.Exit;
        int code = ExitCodeOf(exit.Kind);
        var report = new RunReport(output is null ? "run" : "record", a.Kernel, output, exit, code, result.Elapsed,
            session.Machine.HypercallStats, session.Machine.ExceptionStats, result.TraceEvents, a.Json ? ((MemoryStream)stdout).ToArray() : null);
        if (a.Json) jsonOut.WriteLine(report.ToJson().ToJsonString(JsonOutput.Options));
        else if (a.Stats) report.WriteText(stderr);
        if (code != 0) stderr.WriteLine($"replayvisor: {Describe(exit)}");
        return code;
    }

    /// <summary>
    /// Builds the domain once (and checks the kernel against the Xen profile) before the output path
    /// is touched, so a kernel that would be refused leaves the file system as it was (no new file;
    /// an existing one neither truncated nor deleted).
    /// </summary>
    internal static void RefuseBadKernel(string path, byte[] kernel, DomainBuildOptions options, XenAbi? abi)
    {
        try
        {
            var guest = XenGuestInfo.Parse(kernel);
            DomainBuilder.Build(guest, kernel, options);
            XenAbis.CheckKernel(abi ?? XenAbis.For(guest.IsPae), guest.IsPae);
        }
        catch (BootImageException e)
        {
            throw new CliException(ExitCodes.BadKernel, $"{path}: {e.Message}");
        }
    }

    public static byte[] ReadKernel(string path)
    {
        try { return File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw InputFiles.CannotOpen(path, e); }
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
}

/// <summary>
/// A Ctrl-C or SIGTERM that may arrive before the live session exists: it is remembered and
/// handed to the session as soon as there is one.
/// </summary>
internal sealed class StopRequest
{
    private volatile bool _requested;
    private LiveSession? _session;

    public void Request()
    {
        _requested = true;
        Volatile.Read(ref _session)?.Stop();
    }

    public void Attach(LiveSession session)
    {
        Volatile.Write(ref _session, session);
        if (_requested) session.Stop();
    }
}

/// <summary>The engine build string recorded in traces.</summary>
public static class EngineBuild
{
    public static string Version => typeof(XenMachine).Assembly.GetName().Version?.ToString() ?? "0";
}
