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

    /// <summary>The machine options of this run, with the given clock (null: the virtual clock).</summary>
    public XenMachineOptions Machine(IGuestClock? clock) => new()
    {
        MemoryMiB = MemoryMiB,
        CommandLine = CommandLine,
        InitialDomain = InitialDomain,
        EpochSeconds = EpochSeconds,
        Clock = clock,
        Hypervisor = new HypervisorOptions { Abi = Xen, Console = Console },
    };

    /// <summary>The header's option map. Every key is written, so a header always says everything.</summary>
    public Dictionary<string, string> ToHeaderOptions()
    {
        var options = HeaderOptions();
        if (HypercallOutputOption.Text(HypercallOutputs) is { } outputs) options[RunOptionKeys.HypercallOutputs] = outputs;
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
    };

    /// <summary>
    /// The options a header recorded. A missing key takes the value replay has always assumed
    /// (32 MiB, no checkpoints, no limit, the default epoch, the virtual clock, no chaos, Xen 3.1,
    /// the automatic console view). An unknown Xen profile is a damaged header.
    /// </summary>
    public static RunOptions FromHeader(TraceHeader header)
    {
        string? chaos = header.GetOption(RunOptionKeys.ChaosSeed);
        return new RunOptions
        {
            MemoryMiB = header.GetOption(RunOptionKeys.MemoryMib) is { } mib ? uint.Parse(mib, CultureInfo.InvariantCulture) : 32,
            CommandLine = header.GetOption(RunOptionKeys.Cmdline) ?? "",
            InitialDomain = header.GetOption(RunOptionKeys.InitDomain) == "true",
            EpochSeconds = header.GetOption(RunOptionKeys.EpochSeconds) is { } epoch
                ? uint.Parse(epoch, CultureInfo.InvariantCulture) : VirtualClock.DefaultEpochSeconds,
            Clock = header.GetOption(RunOptionKeys.Clock) == "host" ? ClockKind.Host : ClockKind.Virtual,
            ChaosSeed = string.IsNullOrEmpty(chaos) ? null : int.Parse(chaos, CultureInfo.InvariantCulture),
            CheckpointInterval = header.GetOption(RunOptionKeys.CheckpointInterval) is { } cp ? ulong.Parse(cp, CultureInfo.InvariantCulture) : 0,
            MaxInstructions = header.GetOption(RunOptionKeys.MaxInstructions) is { } max ? ulong.Parse(max, CultureInfo.InvariantCulture) : ulong.MaxValue,
            Xen = XenProfile(header.GetOption(RunOptionKeys.Xen)),
            Console = ConsoleViews.TryParse(header.GetOption(RunOptionKeys.Console), out ConsoleView view) ? view : ConsoleView.Auto,
            HypercallOutputs = HypercallOutputOption.Parse(header.GetOption(RunOptionKeys.HypercallOutputs)),
        };
    }

    private static XenAbi XenProfile(string? name)
    {
        if (name == null) return XenAbis.Unnamed;
        if (XenAbis.TryParse(name, out XenAbi? abi) && abi != null) return abi.Value;
        throw new TraceFormatException(TraceError.BadHeader, null, $"the trace names an unknown Xen profile '{name}'");
    }
}
