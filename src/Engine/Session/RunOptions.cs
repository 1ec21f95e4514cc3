using System.Globalization;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Time;
using Replayvisor.Engine.Trace;
using Replayvisor.Engine.Xen;

namespace Replayvisor.Engine.Session;

/// <summary>Where guest-visible time comes from during a recording.</summary>
public enum ClockKind
{
    /// <summary>One instruction is one nanosecond (<see cref="VirtualClock"/>); nothing is logged.</summary>
    Virtual,
    /// <summary>The host's clock, every value logged (Inputs/ClockInput.cs).</summary>
    Host,
}

/// <summary>
/// Everything about a run that a replay must reproduce, and its one mapping to and from the trace
/// header's option map (<see cref="TraceHeader.Options"/>, keys in <see cref="RunOptionKeys"/>).
/// </summary>
public sealed record RunOptions
{
    public uint MemoryMiB { get; init; } = 16;
    public string CommandLine { get; init; } = "";
    public bool InitialDomain { get; init; }
    public uint EpochSeconds { get; init; } = VirtualClock.DefaultEpochSeconds;
    public ClockKind Clock { get; init; }
    public int? ChaosSeed { get; init; }
    /// <summary>Instructions between checkpoints; 0 for none.</summary>
    public ulong CheckpointInterval { get; init; }
    public ulong MaxInstructions { get; init; } = ulong.MaxValue;
    /// <summary>The Xen profile the guest was shown, as resolved for its kernel (never "auto").</summary>
    public XenAbi Xen { get; init; } = XenAbis.Unnamed;
    /// <summary>Which console was shown (display only).</summary>
    public ConsoleView Console { get; init; }
    /// <summary>What hypercall events carry about guest memory written back (docs/hypercall-outputs.md); None in older traces.</summary>
    public HypercallOutputLevel HypercallOutputs { get; init; }
    /// <summary>vCPUs the domain is built with (docs/xen-model.md, "Several vCPUs").</summary>
    public int Vcpus { get; init; } = 1;
    /// <summary>Upcall events carry the interrupted code and the callback (docs/trace-format.md); false in older traces.</summary>
    public bool UpcallSites { get; init; }
    /// <summary>Exception events carry the handler they were delivered to (docs/trace-format.md); false in older traces.</summary>
    public bool ExceptionHandlers { get; init; }

    /// <summary>The machine options of this run, with the given clock (null: the virtual clock).</summary>
    public XenMachineOptions Machine(IGuestClock? clock) => new()
    {
        MemoryMiB = MemoryMiB,
        CommandLine = CommandLine,
        InitialDomain = InitialDomain,
        EpochSeconds = EpochSeconds,
        Clock = clock,
        Hypervisor = new HypervisorOptions { Abi = Xen, Console = Console, VcpuCount = Vcpus },
    };

    /// <summary>The header's option map. Every key is written, so a header always says everything.</summary>
    public Dictionary<string, string> ToHeaderOptions()
    {
        var options = HeaderOptions();
        if (HypercallOutputOption.Text(HypercallOutputs) is { } outputs) options[RunOptionKeys.HypercallOutputs] = outputs;
        if (UpcallSites) options[RunOptionKeys.UpcallSites] = "true";
        if (ExceptionHandlers) options[RunOptionKeys.ExceptionHandlers] = "true";
        return options;
    }

    private Dictionary<string, string> HeaderOptions() => new()
    {
        [RunOptionKeys.MemoryMib] = MemoryMiB.ToString(CultureInfo.InvariantCulture),
        [RunOptionKeys.Cmdline] = CommandLine,
        [RunOptionKeys.InitDomain] = InitialDomain ? "true" : "false",
        [RunOptionKeys.Clock] = Clock == ClockKind.Host ? "host" : "virtual",
        [RunOptionKeys.ChaosSeed] = ChaosSeed?.ToString(CultureInfo.InvariantCulture) ?? "",
        [RunOptionKeys.CheckpointInterval] = CheckpointInterval.ToString(CultureInfo.InvariantCulture),
        [RunOptionKeys.MaxInstructions] = MaxInstructions.ToString(CultureInfo.InvariantCulture),
        [RunOptionKeys.EpochSeconds] = EpochSeconds.ToString(CultureInfo.InvariantCulture),
        [RunOptionKeys.Xen] = XenAbis.Name(Xen),
        [RunOptionKeys.Console] = ConsoleViews.Name(Console),
        [RunOptionKeys.Vcpus] = Vcpus.ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>
    /// The options a header recorded. A missing key takes the value replay has always assumed
    /// (32 MiB, no checkpoints, no limit, the default epoch, the virtual clock, no chaos, Xen 3.1,
    /// the automatic console view, one vCPU). An unknown Xen profile is a damaged header.
    /// </summary>
    public static RunOptions FromHeader(TraceHeader header)
    {
        ArgumentNullException.ThrowIfNull(header);
        string? chaos = header.GetOption(RunOptionKeys.ChaosSeed);
        string? clock = header.GetOption(RunOptionKeys.Clock);
        if (clock is not (null or "virtual" or "host"))
            throw BadOption(RunOptionKeys.Clock, clock, "is neither 'virtual' nor 'host'");
        return new RunOptions
        {
            // The same memory range `run` and `record` accept (README.md, "The command line").
            MemoryMiB = (uint)Number(header, RunOptionKeys.MemoryMib, 32, 4, 2047),
            CommandLine = header.GetOption(RunOptionKeys.Cmdline) ?? "",
            InitialDomain = header.GetOption(RunOptionKeys.InitDomain) == "true",
            EpochSeconds = (uint)Number(header, RunOptionKeys.EpochSeconds, VirtualClock.DefaultEpochSeconds, 0, uint.MaxValue),
            Clock = clock == "host" ? ClockKind.Host : ClockKind.Virtual,
            ChaosSeed = string.IsNullOrEmpty(chaos) ? null
                : int.TryParse(chaos, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int seed) ? seed
                : throw BadOption(RunOptionKeys.ChaosSeed, chaos, "is not a 32-bit integer"),
            CheckpointInterval = Number(header, RunOptionKeys.CheckpointInterval, 0, 0, ulong.MaxValue),
            MaxInstructions = Number(header, RunOptionKeys.MaxInstructions, ulong.MaxValue, 0, ulong.MaxValue),
            Xen = XenProfile(header.GetOption(RunOptionKeys.Xen)),
            Console = ConsoleViews.TryParse(header.GetOption(RunOptionKeys.Console), out ConsoleView view) ? view : ConsoleView.Auto,
            HypercallOutputs = HypercallOutputOption.Parse(header.GetOption(RunOptionKeys.HypercallOutputs)),
            Vcpus = (int)Number(header, RunOptionKeys.Vcpus, 1, 1, HypervisorOptions.MaxVcpus),
            UpcallSites = header.GetOption(RunOptionKeys.UpcallSites) == "true",
            ExceptionHandlers = header.GetOption(RunOptionKeys.ExceptionHandlers) == "true",
        };
    }

    /// <summary>A decimal option in [min, max]; <paramref name="missing"/> when the key is absent. Anything else is a damaged header.</summary>
    private static ulong Number(TraceHeader header, string key, ulong missing, ulong min, ulong max)
    {
        if (header.GetOption(key) is not { } text) return missing;
        if (!ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out ulong value))
            throw BadOption(key, text, "is not a decimal number");
        if (value < min || value > max)
            throw BadOption(key, text, $"is outside {min}..{max}");
        return value;
    }

    /// <summary>One line naming the option; the value is quoted with control characters escaped and cut to 40 characters.</summary>
    private static TraceFormatException BadOption(string key, string value, string why)
    {
        string shown = value.Length > 40 ? value[..40] + "..." : value;
        var escaped = new System.Text.StringBuilder();
        foreach (char c in shown)
            escaped.Append(char.IsControl(c) || char.IsSurrogate(c) ? $"\\x{(int)c:X2}" : c.ToString());
        return new TraceFormatException(TraceError.BadHeader, TraceLayout.PreambleSize,
            $"bad trace header: option {key}='{escaped}' {why}");
    }

    private static XenAbi XenProfile(string? name)
    {
        if (name == null) return XenAbis.Unnamed;
        if (XenAbis.TryParse(name, out XenAbi? abi) && abi != null) return abi.Value;
        throw BadOption(RunOptionKeys.Xen, name, "is not a known Xen profile");
    }
}
