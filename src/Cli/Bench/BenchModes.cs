using System.CommandLine;

namespace Replayvisor.Cli.Bench;

/// <summary>
/// `bench` is four benches in one command (the CPU bench, --guest, --trace, --diff): more than one of
/// them, or an option given to a bench that does nothing with it, is misuse (exit 2) in one line,
/// never silently ignored.
/// </summary>
public static class BenchModes
{
    public static void Check(ParseResult p, Option[] modes, (Option Option, string[] Benches)[] belongs)
    {
        var given = modes.Where(m => Given(p, m)).ToList();
        if (given.Count > 1)
            throw new CliException(ExitCodes.Usage, $"bench: {given[0].Name} and {given[1].Name} are different benches: give one of them");
        string bench = given.Count == 1 ? given[0].Name : "";
        foreach (var (option, benches) in belongs)
            if (Given(p, option) && !benches.Contains(bench))
                throw new CliException(ExitCodes.Usage,
                    $"bench: {option.Name} applies only to {List(benches.Select(Name).ToList())}, not to {Name(bench)}{(bench.Length == 0 ? " (bench without --guest, --trace or --diff)" : "")}");
    }

    private static string Name(string bench) => bench.Length == 0 ? "the CPU bench" : "bench " + bench;

    private static string List(List<string> names) => names.Count == 1 ? names[0] : string.Join(", ", names[..^1]) + " or " + names[^1];

    /// <summary>Given on the command line (not only its default).</summary>
    private static bool Given(ParseResult p, Option option) => p.GetResult(option) is { Implicit: false };
}
