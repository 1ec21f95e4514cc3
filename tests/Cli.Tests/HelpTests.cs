using System.CommandLine;
using System.Text.RegularExpressions;
using Replayvisor.Cli.Help;

namespace Replayvisor.Cli.Tests;

/// <summary>--help, `help COMMAND` and the examples, over the whole command tree (new commands included).</summary>
public class HelpTests
{
    private static (int Code, string Out, string Err) InProcess(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = CliApp.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    private static string[] PathOf(Command c) =>
        c is RootCommand ? [] : [.. PathOf(c.Parents.OfType<Command>().Single()), c.Name];

    public static TheoryData<string> Commands()
    {
        var data = new TheoryData<string>();
        foreach (var c in CommandTree.All(CliApp.Build(TextWriter.Null, TextWriter.Null)))
            data.Add(string.Join(' ', PathOf(c)));
        return data;
    }

    [Theory]
    [MemberData(nameof(Commands))]
    public void EveryCommandsHelpEndsWithAnExampleThatParses(string command)
    {
        string[] path = command.Length == 0 ? [] : command.Split(' ');
        var (code, output, err) = InProcess([.. path, "--help"]);
        Assert.Equal(0, code);
        Assert.Equal("", err);
        var example = Regex.Match(output, @"Example:\n  (.+)\n\s*$");
        Assert.True(example.Success, $"'replayvisor {command} --help' has no example at its end:\n{output}");
        // The example is a real command line of this command: it parses without errors.
        string line = Regex.Match(example.Groups[1].Value, @"replayvisor[^)|>]*").Value.Trim();
        string[] words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1..];
        Assert.Equal(path, words.Take(path.Length));
        var parsed = CliApp.Build(TextWriter.Null, TextWriter.Null).Parse(words);
        Assert.True(parsed.Errors.Count == 0, $"'{line}': {string.Join("; ", parsed.Errors.Select(e => e.Message))}");
    }

    [Theory]
    [MemberData(nameof(Commands))]
    public void HelpCommandPrintsTheSameAsDashDashHelp(string command)
    {
        string[] path = command.Length == 0 ? [] : command.Split(' ');
        var viaHelp = InProcess(["help", .. path]);
        var viaOption = InProcess([.. path, "--help"]);
        Assert.Equal(0, viaHelp.Code);
        Assert.Equal(viaOption.Out, viaHelp.Out);
    }

    [Fact]
    public void HelpRunDescribesRunFromTheRealProgram()
    {
        var r = Cli.Run("help", "run");
        Assert.True(r.Code == 0, r.ToString());
        Assert.Contains("replayvisor run <kernel> [options]", r.Stdout);
        Assert.Contains("--max-instructions", r.Stdout);
        Assert.Contains("Example:\n  replayvisor run guests/build/hello.elf --stats", r.Stdout);
        Assert.Equal("", r.Stderr);
    }

    [Fact]
    public void HelpDoesNotDependOnTheWorkingDirectory()
    {
        // A directory holding a subdirectory and a file of every extension the CLI completes: the
        // help run there must name no entry of it (file completions are not help names).
        string dir = Directory.CreateTempSubdirectory("rv-help-cwd").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(dir, "zzmarkerdir"));
            foreach (string ext in new[] { ".rvt", ".elf", ".json" }) File.WriteAllText(Path.Combine(dir, "zzmarker" + ext), "");
            var commands = CommandTree.All(CliApp.Build(TextWriter.Null, TextWriter.Null)).Select(c => string.Join(' ', PathOf(c)));
            string loop = string.Join("; ", commands.Select(c => $"echo '## {c}'; dotnet \"$RV\" {c} --help"));
            var r = Cli.Shell($"cd '{dir}' && {{ {loop}; }}");
            Assert.Equal("", r.Stderr);
            Assert.Contains("## diff", r.Stdout);
            Assert.Contains("diff <a.rvt> <b.rvt>", r.Stdout);
            Assert.DoesNotContain("zzmarker", r.Stdout);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void HelpForAnUnknownCommandIsOneLineAndExitTwo()
    {
        var r = Cli.Run("help", "frobnicate");
        Cli.AssertOneLineError(r, 2, "no command 'frobnicate'");
        Assert.Contains("run", r.Stderr);
    }
}
