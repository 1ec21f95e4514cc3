using System.CommandLine;

namespace Replayvisor.Cli.Completion;

/// <summary>
/// Answers a shell's completion request: `replayvisor [suggest:N] "line"` (System.CommandLine's
/// suggest directive, the dotnet-suggest convention) prints the candidates at cursor position N,
/// one per line. It always exits 0 and never writes to stderr: whatever goes wrong, the shell
/// just gets fewer candidates.
/// </summary>
public static class ShellCompletion
{
    /// <summary>Other spellings of --help that would only crowd the list.</summary>
    private static readonly string[] HelpSpellings = ["-?", "/?", "/h"];

    public static bool IsRequest(string[] args) => args.Length > 0 && args[0].StartsWith("[suggest", StringComparison.Ordinal);

    public static int Answer(RootCommand root, string[] args, TextWriter stdout)
    {
        try
        {
            var candidates = new StringWriter();
            root.Parse(args).Invoke(new InvocationConfiguration { Output = candidates, Error = TextWriter.Null, EnableDefaultExceptionHandler = false });
            // Each candidate once: a command with two arguments of one kind (diff's traces) offers its files for both.
            foreach (string line in candidates.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct(StringComparer.Ordinal))
                if (!HelpSpellings.Contains(line)) stdout.WriteLine(line);
        }
        catch (Exception)
        {
            // Completion never reports errors into the user's shell.
        }
        return ExitCodes.Ok;
    }
}
