using System.CommandLine;
using Replayvisor.Cli.Help;

namespace Replayvisor.Cli.Completion;

/// <summary>`replayvisor completion bash|zsh`: prints the shell's completion script (see README).</summary>
internal static class CompletionCommand
{
    public static readonly string[] Shells = ["bash", "zsh"];

    public static Command Create()
    {
        var shell = new Argument<string>("shell") { Description = "bash or zsh" };
        shell.AcceptOnlyFromAmong(Shells);
        var cmd = new Command("completion", "Print the shell completion script for bash or zsh") { shell };
        cmd.WithExample("source <(replayvisor completion bash)");
        cmd.SetAction(p =>
        {
            p.InvocationConfiguration.Output.Write(Script(p.GetValue(shell)!));
            return ExitCodes.Ok;
        });
        return cmd;
    }

    public static string Script(string shell)
    {
        using var stream = typeof(CompletionCommand).Assembly.GetManifestResourceStream($"Replayvisor.Cli.Completion.replayvisor.{shell}")
            ?? throw new InvalidOperationException($"no completion script for {shell}");
        return new StreamReader(stream).ReadToEnd();
    }
}
