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

    [Key(0)] public string EngineBuild { get; }
    /// <summary>Lowercase hex SHA-256 of the guest image stored in the trace.</summary>
    [Key(1)] public string GuestImageSha256 { get; }
    [Key(2)] public string GuestImageName { get; }
    /// <summary>For example "xen-pv-x86_32" or "xen-pv-x86_32-pae".</summary>
    [Key(3)] public string GuestKind { get; }
    [Key(4)] public IReadOnlyDictionary<string, string> Options { get; }

    /// <summary>A header for <paramref name="guestImage"/>, hashing it.</summary>
    public static TraceHeader Create(string engineBuild, string guestImageName, ReadOnlySpan<byte> guestImage,
        string guestKind, IReadOnlyDictionary<string, string>? options = null)
        => new(engineBuild, HashImage(guestImage), guestImageName, guestKind, options);

    public static string HashImage(ReadOnlySpan<byte> guestImage) => Convert.ToHexStringLower(SHA256.HashData(guestImage));

    public string? GetOption(string key) => Options.TryGetValue(key, out var value) ? value : null;

    public bool Equals(TraceHeader? other) =>
        other is not null && EngineBuild == other.EngineBuild && GuestImageSha256 == other.GuestImageSha256
        && GuestImageName == other.GuestImageName && GuestKind == other.GuestKind
        && Options.SequenceEqual(other.Options);

    public override int GetHashCode() => HashCode.Combine(EngineBuild, GuestImageSha256, GuestImageName, GuestKind, Options.Count);
}

/// <summary>Well-known keys of <see cref="TraceHeader.Options"/>. Values are invariant-culture strings; Engine/Session/RunOptions.cs is the one mapping to typed options.</summary>
public static class RunOptionKeys
{
    public const string MemoryMib = "memory-mib";
    public const string Cmdline = "cmdline";
    public const string InitDomain = "initdomain";
    /// <summary>"virtual" or "host".</summary>
    public const string Clock = "clock";
    public const string ChaosSeed = "chaos-seed";
    public const string CheckpointInterval = "checkpoint-interval";
    public const string MaxInstructions = "max-instructions";
    /// <summary>
    /// What hypercall events carry about guest memory written back: absent (older traces) = nothing;
    /// "digest" = output digest and call site; "data" = those and the bytes themselves.
    /// </summary>
    public const string HypercallOutputs = "hypercall-outputs";
    /// <summary>Wallclock seconds at system time 0 under the virtual clock.</summary>
    public const string EpochSeconds = "epoch-seconds";
    /// <summary>The Xen ABI profile, "3.1" or "4.19" (docs/xen-model.md); absent = "3.1" (traces written before the option).</summary>
    public const string Xen = "xen";
    /// <summary>Which console was shown: "auto", "ring", "hypervisor" or "both"; absent = "auto".</summary>
    public const string Console = "console";
}
