using System.Diagnostics;
using System.Text.Json;

namespace Replayvisor.Cli.Tests;

/// <summary>
/// The packages as a user gets them: the `replayvisor` .NET tool installed from a local folder,
/// install.sh's one-line errors, and the trace-reading example built against the packed
/// Replayvisor.Trace. Everything comes from packages packed here (no network needed).
/// </summary>
public class PackageTests
{
    private static (int Code, string Output) Exec(string file, string workDir, IDictionary<string, string?>? env, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workDir };
        foreach (string a in args) psi.ArgumentList.Add(a);
        // The test host's MSBuild settings must not leak into the child dotnet commands.
        foreach (string key in psi.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase) || k.StartsWith("VSTEST", StringComparison.Ordinal)).ToList())
            psi.Environment.Remove(key);
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        foreach (var (k, v) in env ?? new Dictionary<string, string?>()) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(600_000)) { p.Kill(true); throw new TimeoutException($"{file} {string.Join(' ', args)}"); }
        return (p.ExitCode, output + err.Result);
    }

    private static string Dotnet(string workDir, params string[] args)
    {
        var (code, output) = Exec("dotnet", workDir, null, args);
        Assert.True(code == 0, $"dotnet {string.Join(' ', args)} failed ({code}):\n{output}");
        return output;
    }

    /// <summary>A folder with the packages packed from this build, and a nuget.config that uses only it and the local cache.</summary>
    private static readonly Lazy<string> Feed = new(() =>
    {
        string dir = Directory.CreateTempSubdirectory("rv-feed-").FullName;
        string packages = Path.Combine(dir, "packages");
        // Not --no-build: the tool package is a self-contained linux-x64 publish, whose RID-specific
        // build the solution build does not make (the portable build output stays as it is).
        Dotnet(Cli.RepoRoot, "pack", "src/Cli", "-c", "Release", "-nologo", "-o", packages);
        Dotnet(Cli.RepoRoot, "pack", "src/Engine/Trace", "-c", "Release", "--no-build", "-nologo", "-o", packages);
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        File.WriteAllText(Path.Combine(dir, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <config><add key="globalPackagesFolder" value="{Path.Combine(dir, "restored")}" /></config>
              <packageSources><clear /><add key="local" value="{packages}" /></packageSources>
              <fallbackPackageFolders><add key="cache" value="{Path.Combine(home, ".nuget", "packages")}" /></fallbackPackageFolders>
            </configuration>
            """);
        return dir;
    });

    /// <summary>
    /// The tool installs from the local feed and runs. It carries its own runtime, so it runs with
    /// no dotnet on the PATH and DOTNET_ROOT naming an empty directory (where the .NET host looks
    /// first); a framework-dependent tool stops there with the host's "You must install .NET" text.
    /// </summary>
    [Fact]
    public void TheToolInstallsIntoAToolPathAndRunsWithoutADotnetRuntime()
    {
        string tools = Path.Combine(Feed.Value, "tools");
        Dotnet(Feed.Value, "tool", "install", "Replayvisor", "--tool-path", tools, "--configfile", Path.Combine(Feed.Value, "nuget.config"));
        string exe = Path.Combine(tools, "replayvisor");
        string empty = Directory.CreateTempSubdirectory("rv-no-dotnet-").FullName;
        var noDotnet = new Dictionary<string, string?> { ["PATH"] = empty, ["DOTNET_ROOT"] = empty };

        var (code, version) = Exec(exe, Cli.RepoRoot, noDotnet, "--version");
        Assert.True(code == 0, version);
        Assert.StartsWith(typeof(CliApp).Assembly.GetName().Version!.ToString(3), version.Trim());

        var (runCode, run) = Exec(exe, Cli.RepoRoot, noDotnet, "run", Cli.Guest("hello"));
        Assert.True(runCode == 0, run);
        Assert.Contains("ALL PASS hello", run);
        string installed = Path.GetDirectoryName(new FileInfo(exe).ResolveLinkTarget(true)?.FullName ?? exe)!;
        Assert.True(File.Exists(Path.Combine(installed, "libcoreclr.so")), $"no runtime of its own in {installed}");
    }

    [Fact]
    public void TheExampleBuildsAgainstThePackedLibraryAndCountsLikeInfo()
    {
        string project = Path.Combine(Feed.Value, "example");
        Directory.CreateDirectory(project);
        foreach (string f in Directory.GetFiles(Path.Combine(Cli.RepoRoot, "docs", "examples", "CountHypercalls")))
            File.Copy(f, Path.Combine(project, Path.GetFileName(f)));
        File.Copy(Path.Combine(Feed.Value, "nuget.config"), Path.Combine(project, "nuget.config"));
        Assert.True(File.ReadAllLines(Path.Combine(project, "Program.cs")).Length <= 16, "the example stays about 15 lines");

        Dotnet(project, "build", "-c", "Release", "-nologo", "-v", "q");
        string trace = Path.Combine(Cli.RepoRoot, "traces", "sched-host.rvt");
        string output = Dotnet(project, "run", "-c", "Release", "--no-build", "--", trace);

        var info = JsonDocument.Parse(Cli.Run("info", trace, "--json").Stdout).RootElement;
        var numbers = Enumerable.Range(0, 64).ToDictionary(Engine.Xen.Hypercalls.HypercallTable.NameOf);
        var expected = info.GetProperty("hypercallsByName").EnumerateObject()
            .Select(p => (Number: numbers[p.Name], Count: p.Value.GetInt32()))
            .OrderBy(p => p.Number).Select(p => $"hypercall {p.Number,2}: {p.Count}");
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal($"{info.GetProperty("guest").GetProperty("name").GetString()}: {info.GetProperty("instructions").GetUInt64()} instructions, trace format {info.GetProperty("formatVersion").GetInt32()}", lines[0]);
        Assert.Equal(expected, lines[1..]);
    }

    private static (int Code, string Output) InstallSh(IDictionary<string, string?>? env, params string[] args) =>
        Exec(Path.Combine(Cli.RepoRoot, "install.sh"), Cli.RepoRoot, env, args);

    [Fact]
    public void InstallingIntoAnUnwritableToolPathIsOneLine()
    {
        string file = Cli.TempFile("not-a-directory");
        File.WriteAllText(file, "");
        var (code, output) = InstallSh(null, "--tool-path", Path.Combine(file, "tools"));
        Assert.NotEqual(0, code);
        Assert.Equal($"install.sh: cannot write to {Path.Combine(file, "tools")}: choose another directory", output.TrimEnd());
    }

    [Fact]
    public void InstallingWithATooOldDotnetIsOneLine()
    {
        // A `dotnet` first on the PATH that reports .NET 8 only.
        string bin = Path.GetDirectoryName(Cli.TempFile("x"))!;
        string fake = Path.Combine(bin, "dotnet");
        File.WriteAllText(fake, "#!/bin/sh\ncase \"$1\" in --version) echo 8.0.404;; --list-runtimes) echo 'Microsoft.NETCore.App 8.0.11 [/usr/share/dotnet/shared/Microsoft.NETCore.App]';; esac\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(fake, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        var env = new Dictionary<string, string?> { ["PATH"] = bin + ":" + Environment.GetEnvironmentVariable("PATH") };
        var (code, output) = InstallSh(env);
        Assert.NotEqual(0, code);
        Assert.Equal("install.sh: .NET SDK 8.0.404 is too old: replayvisor needs the .NET 10 SDK or newer (https://dot.net/download)", output.TrimEnd());

        // A PATH without dotnet (install.sh needs only dirname and uname before it looks for dotnet).
        string bare = Path.GetDirectoryName(Cli.TempFile("x"))!;
        foreach (string tool in new[] { "dirname", "uname" }) File.CreateSymbolicLink(Path.Combine(bare, tool), "/usr/bin/" + tool);
        env["PATH"] = bare;
        var (missing, said) = Exec("/bin/bash", Cli.RepoRoot, env, Path.Combine(Cli.RepoRoot, "install.sh"));
        Assert.NotEqual(0, missing);
        Assert.Single(said.TrimEnd().Split('\n'));
        Assert.Contains("'dotnet' is not on the PATH", said);
    }

    [Fact]
    public void InstallingOnAnotherPlatformIsOneLine()
    {
        // A `uname` first on the PATH that reports a 64-bit Arm Mac.
        string bin = Path.GetDirectoryName(Cli.TempFile("x"))!;
        string fake = Path.Combine(bin, "uname");
        File.WriteAllText(fake, "#!/bin/sh\ncase \"$1\" in -s) echo Darwin;; -m) echo arm64;; esac\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(fake, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        var env = new Dictionary<string, string?> { ["PATH"] = bin + ":" + Environment.GetEnvironmentVariable("PATH") };
        var (code, output) = InstallSh(env);
        Assert.NotEqual(0, code);
        Assert.Equal("install.sh: replayvisor is built for Linux on x86-64 (linux-x64); this is Darwin arm64", output.TrimEnd());
    }
}
