using System.Diagnostics;

namespace Replayvisor.Cli.Tests;

/// <summary>Runs the real `replayvisor` program as a child process.</summary>
public static class Cli
{
    public sealed record Result(int Code, string Stdout, string Stderr)
    {
        public override string ToString() => $"exit {Code}\nstdout:\n{Stdout}\nstderr:\n{Stderr}";
    }

    private static readonly string Dll = Path.Combine(AppContext.BaseDirectory, "replayvisor.dll");

    public static Result RunWithInput(string stdin, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        psi.ArgumentList.Add(Dll);
        foreach (string a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        p.StandardInput.Write(stdin);
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(300_000)) { p.Kill(true); throw new TimeoutException("replayvisor did not finish: " + string.Join(' ', args)); }
        return new Result(p.ExitCode, stdout.Result, stderr.Result);
    }

    public static Result Run(params string[] args) => RunWithInput("", args);

    /// <summary>Runs <paramref name="command"/> with <c>sh -c</c> (pipes, redirections, closed descriptors); $RV names replayvisor.dll.</summary>
    public static Result Shell(string command)
    {
        var psi = new ProcessStartInfo("sh") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(command);
        psi.Environment["RV"] = Path.Combine(AppContext.BaseDirectory, "replayvisor.dll");
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return new Result(p.ExitCode, stdout.Result, stderr);
    }

    public static string RepoRoot { get; } = FindRoot();

    private static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Replayvisor.sln"))) return d.FullName;
        throw new InvalidOperationException("no Replayvisor.sln above " + AppContext.BaseDirectory);
    }

    private static readonly Lazy<string> GuestDir = new(() =>
    {
        string dir = Path.Combine(RepoRoot, "guests", "build");
        if (!File.Exists(Path.Combine(dir, "fpu.elf")))
        {
            using var p = Process.Start(new ProcessStartInfo("make", $"-s -C \"{Path.Combine(RepoRoot, "guests")}\"") { RedirectStandardError = true })!;
            string err = p.StandardError.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0) throw new InvalidOperationException("building the guests failed: " + err);
        }
        return dir;
    });

    public static string Guest(string name) => Path.Combine(GuestDir.Value, name + ".elf");

    public static string TempFile(string name) => Path.Combine(Directory.CreateTempSubdirectory("rv-cli-").FullName, name);

    /// <summary>An error is one line on stderr, never a .NET stack trace.</summary>
    public static void AssertOneLineError(Result r, int code, string contains)
    {
        Assert.True(r.Code == code, r.ToString());
        string[] lines = r.Stderr.TrimEnd().Split('\n');
        Assert.True(lines.Length == 1, "expected one stderr line:\n" + r);
        Assert.StartsWith("replayvisor: ", lines[0]);
        Assert.Contains(contains, lines[0]);
        Assert.DoesNotContain("   at ", r.Stderr);
        Assert.DoesNotContain("Exception", r.Stderr);
    }
}
