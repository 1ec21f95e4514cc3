using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;

namespace Replayvisor.Cli.Help;

/// <summary>The standard --help text followed by the command's one-line example.</summary>
internal sealed class HelpWithExample(HelpAction standard) : SynchronousCommandLineAction
{
    public override int Invoke(ParseResult parseResult)
    {
        int code = standard.Invoke(parseResult);
        if (CommandExamples.ExampleOf(parseResult.CommandResult.Command) is { } example)
        {
            var output = parseResult.InvocationConfiguration.Output;
            output.WriteLine("Example:");
            output.WriteLine($"  {example}");
            output.WriteLine();
        }
        return code;
    }
}
