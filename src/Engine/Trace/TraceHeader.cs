using System.Security.Cryptography;
using MessagePack;

namespace Replayvisor.Engine.Trace;

/// <summary>
/// What a trace was recorded from: the engine build, the guest image (name and SHA-256), the
/// guest kind and the run options as a string map (keys in <see cref="RunOptionKeys"/>).
/// Options are kept sorted by ordinal key so a header always encodes to the same bytes.
/// </summary>
[MessagePackObject]
public sealed record TraceHeader
{
    /// <summary>A header with these fields; <see cref="Create"/> computes the image hash instead.</summary>
    [SerializationConstructor]
    public TraceHeader(string engineBuild, string guestImageSha256, string guestImageName, string guestKind,
        IReadOnlyDictionary<string, string>? options)
    {
        EngineBuild = engineBuild;
        GuestImageSha256 = guestImageSha256;
        GuestImageName = guestImageName;
        GuestKind = guestKind;
        Options = new SortedDictionary<string, string>(
            options?.ToDictionary(StringComparer.Ordinal) ?? new Dictionary<string, string>(), StringComparer.Ordinal);
    }

    /// <summary>The build of the engine that recorded the trace.</summary>
    [Key(0)] public string EngineBuild { get; }
    /// <summary>Lowercase hex SHA-256 of the guest image stored in the trace.</summary>
    [Key(1)] public string GuestImageSha256 { get; }
    /// <summary>The guest kernel's file name.</summary>
    [Key(2)] public string GuestImageName { get; }
    /// <summary>For example "xen-pv-x86_32" or "xen-pv-x86_32-pae".</summary>
    [Key(3)] public string GuestKind { get; }
    /// <summary>The run options, by the keys of <see cref="RunOptionKeys"/>.</summary>
    [Key(4)] public IReadOnlyDictionary<string, string> Options { get; }

    /// <summary>A header for <paramref name="guestImage"/>, hashing it.</summary>
    public static TraceHeader Create(string engineBuild, string guestImageName, ReadOnlySpan<byte> guestImage,
        string guestKind, IReadOnlyDictionary<string, string>? options = null)
        => new(engineBuild, HashImage(guestImage), guestImageName, guestKind, options);

    /// <summary>The lowercase hex SHA-256 of a guest image, as the header stores it.</summary>
    public static string HashImage(ReadOnlySpan<byte> guestImage) => Convert.ToHexStringLower(SHA256.HashData(guestImage));

    /// <summary>The option's value, or null when the header does not have it.</summary>
    public string? GetOption(string key) => Options.TryGetValue(key, out var value) ? value : null;

    /// <summary>Equal when every field and every option is equal.</summary>
    public bool Equals(TraceHeader? other) =>
        other is not null && EngineBuild == other.EngineBuild && GuestImageSha256 == other.GuestImageSha256
        && GuestImageName == other.GuestImageName && GuestKind == other.GuestKind
        && Options.SequenceEqual(other.Options);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(EngineBuild, GuestImageSha256, GuestImageName, GuestKind, Options.Count);
}

/// <summary>Well-known keys of <see cref="TraceHeader.Options"/>. Values are invariant-culture strings; Engine/Session/RunOptions.cs is the one mapping to typed options.</summary>
public static class RunOptionKeys
{
    /// <summary>Guest memory in MiB.</summary>
    public const string MemoryMib = "memory-mib";
    /// <summary>The guest command line.</summary>
    public const string Cmdline = "cmdline";
    /// <summary>"true" when the guest was built as the initial domain.</summary>
    public const string InitDomain = "initdomain";
    /// <summary>"virtual" or "host".</summary>
    public const string Clock = "clock";
    /// <summary>The chaos-mode seed, when chaos was on.</summary>
    public const string ChaosSeed = "chaos-seed";
    /// <summary>Instructions between checkpoint events.</summary>
    public const string CheckpointInterval = "checkpoint-interval";
    /// <summary>The instruction limit of the run.</summary>
    public const string MaxInstructions = "max-instructions";
    /// <summary>
    /// What hypercall events carry about guest memory written back: absent (older traces) = nothing;
    /// "digest" = output digest and call site; "data" = those and the bytes themselves.
    /// </summary>
    public const string HypercallOutputs = "hypercall-outputs";
    /// <summary>"true": upcall events carry the interrupted code address and the callback entered; absent (older traces) = they do not.</summary>
    public const string UpcallSites = "upcall-sites";
    /// <summary>"true": exception events carry the handler they were delivered to (key 6).</summary>
    public const string ExceptionHandlers = "exception-handlers";
    /// <summary>Wallclock seconds at system time 0 under the virtual clock.</summary>
    public const string EpochSeconds = "epoch-seconds";
    /// <summary>The Xen ABI profile, "3.1" or "4.19" (docs/xen-model.md); absent = "3.1" (traces written before the option).</summary>
    public const string Xen = "xen";
    /// <summary>Which console was shown: "auto", "ring", "hypervisor" or "both"; absent = "auto".</summary>
    public const string Console = "console";
    /// <summary>vCPUs the domain was built with (`--vcpus`), decimal 1..32; absent = 1.</summary>
    public const string Vcpus = "vcpus";
}
