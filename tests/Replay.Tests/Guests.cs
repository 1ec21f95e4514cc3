using System.Diagnostics;

namespace Replayvisor.Replay.Tests;

/// <summary>The guest kernels of guests/, built once per test run with make if they are missing.</summary>
public static class Guests
{
    public static readonly string[] Names = ["hello", "traps", "pagetables", "segments", "events", "failsafe", "multicall", "sched", "echo", "syscalls", "interfaces", "preempt", "debugregs", "ticker", "smp", "databp", "vcpuop", "stacked"];

    /// <summary>Two builds of one kernel that differ in one function (guests/variant).</summary>
    public static readonly string[] Variants = ["variant-a", "variant-b"];

    /// <summary>Console input the echo guest reads (it powers off on "quit").</summary>
    public static readonly byte[] EchoInput = "hello, replay\nsecond line\nquit\n"u8.ToArray();

    private static readonly Lazy<string> BuildDir = new(Build);

    public static string RepoRoot { get; } = FindRoot();

    private static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Replayvisor.sln"))) return d.FullName;
        throw new InvalidOperationException("cannot find the repository root (Replayvisor.sln) above " + AppContext.BaseDirectory);
    }

    private static string Build()
    {
        string dir = Path.Combine(RepoRoot, "guests", "build");
        if (Names.All(n => File.Exists(Path.Combine(dir, n + ".elf")) && File.Exists(Path.Combine(dir, n + "-pae.elf")))
            && Variants.All(v => File.Exists(Path.Combine(dir, v + ".elf")))) return dir;
        var psi = new ProcessStartInfo("make", $"-s -C \"{Path.Combine(RepoRoot, "guests")}\"") { RedirectStandardError = true, RedirectStandardOutput = true };
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start make");
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException("building the guests failed: " + err);
        return dir;
    }

    public static string Path_(string name, bool pae) => Path.Combine(BuildDir.Value, name + (pae ? "-pae" : "") + ".elf");

    public static byte[] Image(string name, bool pae) => File.ReadAllBytes(Path_(name, pae));

    public static IEnumerable<object[]> All() =>
        from n in Names from pae in new[] { false, true } select new object[] { n, pae };
}
