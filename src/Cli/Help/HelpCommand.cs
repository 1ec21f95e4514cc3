using System.CommandLine;

namespace Replayvisor.Cli.Help;

/// <summary>`replayvisor help [command]`: the same text as `replayvisor [command] --help`.</summary>
internal static class HelpCommand
{
    public static Command Create(RootCommand root)
    {
        var words = new Argument<string[]>("command") { Description = "The command to explain", Arity = ArgumentArity.ZeroOrMore };
        words.CompletionSources.Add(_ => CommandTree.Visible(root).Select(c => c.Name));
        var cmd = new Command("help", "Show help for a command") { words };
        cmd.WithExample("replayvisor help record");
        cmd.SetAction(p =>
        {
            string[] path = p.GetValue(words) ?? [];
            Command at = root;
            foreach (string word in path)
                at = CommandTree.Visible(at).FirstOrDefault(c => c.Name == word || c.Aliases.Contains(word))
                    ?? throw new CliException(ExitCodes.Usage,
                        $"no command '{string.Join(' ', path)}' (commands: {string.Join(", ", CommandTree.Visible(root).Select(c => c.Name))})");
            return root.Parse([.. path, "--help"]).Invoke(p.InvocationConfiguration);
        });
        return cmd;
    }
}
