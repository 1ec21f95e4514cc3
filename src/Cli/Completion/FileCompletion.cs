using System.CommandLine;
using System.CommandLine.Completions;

namespace Replayvisor.Cli.Completion;

/// <summary>
/// Completes a file argument: the directories (ending in '/', so completion can go on inside them)
/// and the files with one extension, under the directory typed so far.
/// </summary>
public static class FileCompletion
{
    public static Argument<T> CompletesFiles<T>(this Argument<T> argument, string extension)
    {
        argument.CompletionSources.Add(Source(extension));
        return argument;
    }

    public static Func<CompletionContext, IEnumerable<CompletionItem>> Source(string extension) =>
        context => Candidates(context.WordToComplete, extension).Select(path => new CompletionItem(path));

    public static IReadOnlyList<string> Candidates(string word, string extension)
    {
        string typedDir = word[..(word.LastIndexOf('/') + 1)];
        string prefix = word[typedDir.Length..];
        var found = new List<string>();
        try
        {
            foreach (var entry in new DirectoryInfo(typedDir.Length == 0 ? "." : typedDir).EnumerateFileSystemInfos())
            {
                if (!entry.Name.StartsWith(prefix, StringComparison.Ordinal)) continue;
                if (entry.Name.StartsWith('.') && !prefix.StartsWith('.')) continue;
                if (entry is DirectoryInfo) found.Add(typedDir + entry.Name + "/");
                else if (entry.Name.EndsWith(extension, StringComparison.Ordinal)) found.Add(typedDir + entry.Name);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or System.Security.SecurityException)
        {
            return []; // an unreadable or malformed directory simply has no candidates
        }
        found.Sort(StringComparer.Ordinal);
        return found;
    }
}
