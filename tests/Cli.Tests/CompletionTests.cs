using System.Diagnostics;

namespace Replayvisor.Cli.Tests;

/// <summary>
/// The completion scripts of `replayvisor completion bash|zsh`, run in a real bash and zsh with the
/// program on the PATH: the candidates the shell would offer for a few command lines.
/// </summary>
public class CompletionTests
{
    /// <summary>A directory holding a `replayvisor` that runs the built program, as an install would.</summary>
    private static readonly Lazy<string> BinDir = new(() =>
    {
        string dir = Directory.CreateTempSubdirectory("rv-completion-").FullName;
        string shim = Path.Combine(dir, "replayvisor");
        File.WriteAllText(shim, $"#!/bin/sh\nexec dotnet \"{Path.Combine(AppContext.BaseDirectory, "replayvisor.dll")}\" \"$@\"\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(shim, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return dir;
    });

    private static (string Out, string Err) Shell(string shell, string script)
    {
        var psi = new ProcessStartInfo(shell) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Cli.RepoRoot };
        psi.Environment["PATH"] = BinDir.Value + ":" + Environment.GetEnvironmentVariable("PATH");
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"{shell} is needed (test.sh installs it)");
        p.StandardInput.Write(script);
        p.StandardInput.Close();
        var err = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(120_000), $"{shell} did not finish");
        return (output, err.Result);
    }

    private static string Script(string shell) => Cli.Run("completion", shell).Stdout;

    /// <summary>COMPREPLY for each line (the cursor at its end), from one bash with the script loaded.</summary>
    private static (List<string[]> Replies, string Err) Bash(params string[] lines)
    {
        var script = new System.Text.StringBuilder(Script("bash"));
        foreach (string line in lines)
        {
            script.AppendLine($"COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}");
            script.AppendLine($"read -ra COMP_WORDS <<< \"$COMP_LINE\"; [[ $COMP_LINE == *' ' ]] && COMP_WORDS+=('')");
            script.AppendLine("COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); _replayvisor_complete; echo \"[${COMPREPLY[*]}]\"");
        }
        var (output, err) = Shell("bash", script.ToString());
        var replies = output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Trim('[', ']').Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList();
        Assert.True(replies.Count == lines.Length, output + err);
        return (replies, err);
    }

    [Fact]
    public void BashCompletesCommandsOptionsKindsAndTraceFiles()
    {
        var (r, err) = Bash(
            "replayvisor re",
            "replayvisor dump traces/echo.rvt --ki",
            "replayvisor dump traces/echo.rvt --kind hyp",
            "replayvisor dump traces/echo.rvt --kind ",
            "replayvisor info tra",
            "replayvisor info traces/ech",
            "replayvisor record guests/build/hello.elf -o x.rvt --clock ",
            "replayvisor help be",
            "replayvisor completion ");
        Assert.Equal(["record", "replay"], r[0]);
        Assert.Equal(["--kind"], r[1]);
        Assert.Equal(["hypercall"], r[2]);
        Assert.Contains("console-out", r[3]);
        Assert.Contains("checkpoint", r[3]);
        Assert.Equal(["traces/"], r[4]);
        Assert.Equal(["traces/echo.rvt"], r[5]);
        Assert.Equal(["host", "virtual"], r[6]);
        Assert.Equal(["bench"], r[7]);
        Assert.Equal(["bash", "zsh"], r[8].Where(c => !c.StartsWith('-')));
        Assert.Equal("", err);
    }

    [Fact]
    public void DiffAndExportCompleteTraceFilesAndExportItsFormatAndOutput()
    {
        var (r, err) = Bash(
            "replayvisor diff traces/ech",
            "replayvisor diff traces/echo.rvt traces/ech",
            "replayvisor export traces/ech",
            "replayvisor export traces/echo.rvt --format ",
            "replayvisor export traces/echo.rvt -o doc");
        Assert.Equal(["traces/echo.rvt"], r[0]);
        Assert.Equal(["traces/echo.rvt"], r[1]);
        Assert.Equal(["traces/echo.rvt"], r[2]);
        Assert.Equal(["perfetto"], r[3]);
        Assert.Equal(["docs/"], r[4]);
        Assert.Equal("", err);
    }

    [Fact]
    public void AFileNameWithASpaceCompletesInsideItsDirectoryAndIsInsertedEscaped()
    {
        string dir = Directory.CreateTempSubdirectory("rv-completion-").FullName;
        Directory.CreateDirectory(Path.Combine(dir, "my traces"));
        File.WriteAllBytes(Path.Combine(dir, "my traces", "a b.rvt"), []);
        // COMP_WORDS as bash splits the line: an escaped or quoted space stays inside its word.
        string bash = Script("bash") + $$"""
            cd '{{dir}}'
            ask() { COMP_LINE="replayvisor info $1"; COMP_POINT=${#COMP_LINE}; COMP_WORDS=(replayvisor info "$1"); COMP_CWORD=2; _replayvisor_complete; printf '[%s]' "${COMPREPLY[@]}"; echo; }
            ask 'my'
            ask 'my\ traces/'
            ask 'my\ traces/a'
            ask '"my traces/'
            """;
        var (output, err) = Shell("bash", bash);
        Assert.Equal(["[my\\ traces/]", "[my\\ traces/a\\ b.rvt]", "[my\\ traces/a\\ b.rvt]", "[my traces/a b.rvt]"], output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal("", err);
        // zsh hands compadd the names as they are (it quotes them itself when inserting).
        string zsh = "compdef() { :; }\n" + Script("zsh") + $$"""
            compadd() { while [[ $1 == -* && $1 != -- ]]; do [[ $1 == -S ]] && shift; shift; done; [[ $1 == -- ]] && shift; print -r -- "${(j:,:)@}"; }
            cd '{{dir}}'
            words=(replayvisor info 'my\ traces/'); CURRENT=3; _replayvisor; print '|'
            words=(replayvisor info '"my traces/a'); CURRENT=3; _replayvisor; print '|'
            """;
        (output, err) = Shell("zsh", zsh);
        string[] parts = output.Split('|');
        Assert.Equal("my traces/a b.rvt", parts[0].Trim());
        Assert.Equal("my traces/a b.rvt", parts[1].Trim());
        Assert.Equal("", err);
    }

    [Fact]
    public void BashCompletionOffersOnlyTracesAndDirectoriesForATraceArgument()
    {
        var (r, _) = Bash("replayvisor replay traces/");
        Assert.NotEmpty(r[0]);
        Assert.All(r[0], c => Assert.True(c.EndsWith(".rvt") || c.EndsWith('/'), c));
        Assert.Equal(Directory.GetFiles(Path.Combine(Cli.RepoRoot, "traces"), "*.rvt").Length, r[0].Count(c => c.EndsWith(".rvt")));
    }

    [Fact]
    public void CompletionNeverPrintsErrors()
    {
        var (r, err) = Bash(
            "replayvisor --memory x y z",
            "replayvisor info /nonexistent/dir/",
            "replayvisor dump traces/echo.rvt --from notanumber ",
            "replayvisor frobnicate ");
        Assert.Equal("", err);
        Assert.Empty(r[1]);
        // The directive itself, given nonsense, answers nothing on stderr and exits 0.
        foreach (string[] args in new[] { new[] { "[suggest:999]", "replayvisor run" }, ["[suggest:x]"], ["[suggest]", "--memory"] })
        {
            var d = Cli.Run(args);
            Assert.True(d.Code == 0 && d.Stderr == "", d.ToString());
        }
    }

    [Fact]
    public void TheZshScriptSourcedBeforeCompinitSaysWhatToDoAndAfterItRegistersQuietly()
    {
        // Without compinit zsh has no compdef: the line at every shell start was "command not found: compdef".
        var (output, err) = Shell("zsh", Script("zsh") + "\nprint loaded\n");
        Assert.Equal("loaded", output.Trim());
        Assert.Equal("replayvisor: zsh completion needs compinit first: put 'autoload -Uz compinit && compinit' before this line in ~/.zshrc", err.Trim());
        // -D: no dump file written into the home directory; -u: no question about insecure directories (it would read the script on stdin).
        (output, err) = Shell("zsh", "autoload -Uz compinit && compinit -u -D\n" + Script("zsh") + "\nprint ${_comps[replayvisor]}\n");
        Assert.Equal("_replayvisor", output.Trim());
        Assert.Equal("", err);
    }

    [Fact]
    public void ZshCompletesCommandsKindsAndTraceFiles()
    {
        // compadd is a builtin of zsh's completion system; a stand-in records what the script offers.
        string script = "compdef() { :; }\n" + Script("zsh") + """
            compadd() { while [[ $1 == -* && $1 != -- ]]; do [[ $1 == -S ]] && shift; shift; done; [[ $1 == -- ]] && shift; print -r -- "${(j:,:)@}"; }
            words=(replayvisor dump traces/echo.rvt --kind up); CURRENT=5; _replayvisor; print '|'
            words=(replayvisor info traces/ech); CURRENT=3; _replayvisor; print '|'
            words=(replayvisor ""); CURRENT=2; _replayvisor; print '|'
            """;
        var (output, err) = Shell("zsh", script);
        string[] parts = output.Split('|');
        Assert.Equal("upcall", parts[0].Trim());
        Assert.Equal("traces/echo.rvt", parts[1].Trim());
        Assert.Contains("record", parts[2].Split([',', '\n']));
        Assert.Contains("completion", parts[2].Split([',', '\n']));
        Assert.Equal("", err);
    }
}
