using System.CommandLine;
using System.Runtime.CompilerServices;

namespace Replayvisor.Cli.Help;

/// <summary>
/// The one-line example each command shows at the end of its --help. Every command in the tree
/// has one (CommandTreeTests checks, and checks that each example parses).
/// </summary>
public static class CommandExamples
{
    private static readonly ConditionalWeakTable<Command, string> Examples = [];

    public static T WithExample<T>(this T command, string example) where T : Command
    {
        Examples.AddOrUpdate(command, example);
        return command;
    }

    public static string? ExampleOf(Command command) => Examples.TryGetValue(command, out var e) ? e : null;
}
