using System.CommandLine;
using System.CommandLine.Help;
using Replayvisor.Cli.Completion;

namespace Replayvisor.Cli.Help;

/// <summary>
/// What every command gets without asking: `help` and `completion`, and an example at the end of
/// its --help. Works over whatever commands the tree holds, so a new command needs only its example.
/// </summary>
public static class CommandTree
{
    public static RootCommand Finish(RootCommand root)
    {
        root.Subcommands.Add(HelpCommand.Create(root));
        root.Subcommands.Add(CompletionCommand.Create());
        foreach (var option in root.Options.OfType<HelpOption>())
            if (option.Action is HelpAction standard)
                option.Action = new HelpWithExample(standard);
        return root;
    }

    /// <summary>True when the command line asks for help: it is answered even when the rest does not parse.</summary>
    public static bool IsHelp(ParseResult parsed) => parsed.Action is HelpWithExample;

    /// <summary>The subcommands of <paramref name="command"/> a user may type.</summary>
    public static IEnumerable<Command> Visible(Command command) => command.Subcommands.Where(c => !c.Hidden);

    /// <summary>Every command of the tree, the root first.</summary>
    public static IEnumerable<Command> All(Command root) => [root, .. root.Subcommands.SelectMany(All)];
}
