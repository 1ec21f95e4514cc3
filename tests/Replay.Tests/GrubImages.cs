using System.Diagnostics;

namespace Replayvisor.Replay.Tests;

/// <summary>
/// The GRUB i386-xen images built by guests/grub/fetch-and-build.sh from Debian's packages
/// (guests/README.md), run once per test run. Where the packages cannot be downloaded the
/// script says so (exit 3, STATUS "unavailable: …") and the GRUB tests report "not tested".
/// </summary>
public static class GrubImages
{
    public sealed record Build(int ExitCode, string Status, string Directory)
    {
        public bool Available => ExitCode == 0;
        public string Path(string name) => System.IO.Path.Combine(Directory, $"grub-{name}.elf");
        public byte[] Image(string name) => File.ReadAllBytes(Path(name));
    }

    private static readonly Lazy<Build> Built = new(Run);

    public static Build Get() => Built.Value;

    private static Build Run()
    {
        string dir = Path.Combine(Guests.RepoRoot, "guests", "build", "grub");
        string script = Path.Combine(Guests.RepoRoot, "guests", "grub", "fetch-and-build.sh");
        var psi = new ProcessStartInfo("bash", [script, dir]) { RedirectStandardError = true, RedirectStandardOutput = true };
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start bash");
        string err = p.StandardError.ReadToEnd();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        string statusFile = Path.Combine(dir, "STATUS");
        string status = File.Exists(statusFile) ? File.ReadAllText(statusFile).Trim() : "";
        if (p.ExitCode is not (0 or 3))
            throw new InvalidOperationException($"guests/grub/fetch-and-build.sh failed ({p.ExitCode}): {err}");
        return new Build(p.ExitCode, status, dir);
    }
}
