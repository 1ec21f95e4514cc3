using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Trace;

namespace Replayvisor.Replay.Diff;

/// <summary>Why two traces cannot be compared meaningfully.</summary>
public enum IncomparableKind
{
    /// <summary>The same file on both sides.</summary>
    SameTrace,
    /// <summary>Written by different trace format versions.</summary>
    FormatVersions,
    /// <summary>Recorded with settings that change what the guest sees (memory size, clock, Xen ABI, privilege).</summary>
    Settings,
    /// <summary>Two different guests, not two builds of one.</summary>
    UnrelatedGuests,
}

public sealed class IncomparableTracesException(IncomparableKind kind, string message) : Exception(message)
{
    public IncomparableKind Kind { get; } = kind;
}

/// <summary>
/// Decides whether two traces can be compared (docs/diff.md "Incomparable traces"): the header
/// options that define the guest's world (memory, clock, Xen profile, privilege, vCPUs) must agree; options that cannot change a run
/// (checkpoint interval, instruction limit, hypercall data) and ones a user varies on purpose
/// (command line, chaos seed) may differ.
/// </summary>
public static class Comparability
{
    /// <summary>Options whose difference makes a comparison meaningless, with what to call them.</summary>
    private static readonly (string Key, string What, string Default)[] WorldOptions =
    [
        (RunOptionKeys.MemoryMib, "memory size (MiB)", "32"),
        (RunOptionKeys.Clock, "clock", "virtual"),
        (RunOptionKeys.EpochSeconds, "boot wallclock (epoch seconds)", ""),
        (RunOptionKeys.Xen, "Xen ABI profile", "3.1"),
        (RunOptionKeys.InitDomain, "initial-domain setting", "false"),
        (RunOptionKeys.Vcpus, "number of vCPUs", "1"),
    ];

    /// <summary>The format of a trace's events: format 4 only adds keyframe chunks to format 3 (docs/trace-format.md "Versions").</summary>
    private static int EventFormat(TraceReader t) => t.FormatVersion == 4 ? 3 : t.FormatVersion;

    /// <summary>Throws <see cref="IncomparableTracesException"/> with one clear line when the traces cannot be compared.</summary>
    public static void Check(string pathA, TraceReader a, string pathB, TraceReader b)
    {
        if (FilePaths.SameFile(pathA, pathB))
            throw new IncomparableTracesException(IncomparableKind.SameTrace, $"{pathA}: a trace compared with itself (give two recordings)");
        if (EventFormat(a) != EventFormat(b))
            throw new IncomparableTracesException(IncomparableKind.FormatVersions,
                $"the traces were written by different format versions ({a.FormatVersion} and {b.FormatVersion}): re-record one with the other's engine");
        foreach (var (key, what, fallback) in WorldOptions)
        {
            string va = a.Header.GetOption(key) ?? fallback, vb = b.Header.GetOption(key) ?? fallback;
            if (va != vb)
                throw new IncomparableTracesException(IncomparableKind.Settings,
                    $"the traces cannot be compared: they were recorded with different {what} ({Show(va)} and {Show(vb)})");
        }
        if (a.Header.GuestKind != b.Header.GuestKind)
            throw new IncomparableTracesException(IncomparableKind.Settings,
                $"the traces cannot be compared: different guest kinds ({a.Header.GuestKind} and {b.Header.GuestKind})");
        if (a.Header.GuestImageSha256 != b.Header.GuestImageSha256 && !Related(a.GuestImage.Span, b.GuestImage.Span, out string why))
            throw new IncomparableTracesException(IncomparableKind.UnrelatedGuests,
                $"the traces are of unrelated guests ({a.Header.GuestImageName} and {b.Header.GuestImageName}: {why})");
    }

    private static string Show(string v) => v.Length == 0 ? "unset" : v;

    /// <summary>
    /// Two images are builds of one guest when they were built from (nearly) the same source files
    /// (Jaccard index of the STT_FILE name sets at least 0.9) and most of their function names
    /// are shared (index at least 0.5). Guests sharing a library differ in their own files; images
    /// without symbols cannot be told apart and are taken as related.
    /// </summary>
    public static bool Related(ReadOnlySpan<byte> imageA, ReadOnlySpan<byte> imageB, out string why)
    {
        var sa = GuestSymbols.FromImage(imageA);
        var sb = GuestSymbols.FromImage(imageB);
        why = "";
        var filesA = sa.SourceFiles.ToHashSet(StringComparer.Ordinal);
        var filesB = sb.SourceFiles.ToHashSet(StringComparer.Ordinal);
        if (filesA.Count > 0 && filesB.Count > 0 && Jaccard(filesA, filesB, out int commonFiles, out int allFiles) < 0.9)
        {
            why = $"source files {Only(filesA, filesB)} vs {Only(filesB, filesA)}; {commonFiles} of {allFiles} in common";
            return false;
        }
        var fa = Functions(sa);
        var fb = Functions(sb);
        if (fa.Count == 0 || fb.Count == 0) return true;
        if (Jaccard(fa, fb, out int common, out int all) < 0.5)
        {
            why = $"{common} of {all} function names in common";
            return false;
        }
        return true;
    }

    private static string Only(HashSet<string> a, HashSet<string> b) =>
        a.Except(b).Order(StringComparer.Ordinal).ToList() is { Count: > 0 } only ? string.Join(", ", only) : "(none)";

    private static double Jaccard(HashSet<string> a, HashSet<string> b, out int common, out int all)
    {
        common = a.Count(b.Contains);
        all = a.Count + b.Count - common;
        return all == 0 ? 1 : (double)common / all;
    }

    private static HashSet<string> Functions(GuestSymbols s) => s.All.Where(x => x.IsFunction).Select(x => x.Name).ToHashSet(StringComparer.Ordinal);
}
