using System.CommandLine;
using System.CommandLine.Completions;

namespace Replayvisor.Cli.Completion;

/// <summary>
/// Completes a file argument: the directories (ending in '/', so completion can go on inside them)
/// and the files with one extension, under the directory typed so far.
/// </summary>
public static class FileCompletion
{
    /// <remarks>
    /// Gives the argument a help name when it has none (its name and the extension, e.g. `a.rvt`):
    /// without one, System.CommandLine's help shows an argument's completions as its name, which here
    /// would list the current directory's entries in `--help`.
    /// </remarks>
    public static Argument<T> CompletesFiles<T>(this Argument<T> argument, string extension)
    {
        argument.HelpName ??= argument.Name + extension;
        argument.CompletionSources.Add(Source(extension));
        return argument;
    }

    /// <summary>As <see cref="CompletesFiles{T}(Argument{T}, string)"/> for an option's value; the help name, when none is set, is `file` and the extension.</summary>
    public static Option<T> CompletesFiles<T>(this Option<T> option, string extension)
    {
        option.HelpName ??= "file" + extension;
        option.CompletionSources.Add(Source(extension));
        return option;
    }

    public static Func<CompletionContext, IEnumerable<CompletionItem>> Source(string extension) =>
        context => Candidates(WordOf(context), extension).Select(path => new CompletionItem(path));

    /// <summary>
    /// The file name being completed. System.CommandLine splits the line at every space, quoted or
    /// escaped, so for a shell's line (`[suggest:N] "line"`) the word is read back from the text
    /// with the shell's quoting: `my\ traces/` and `"my traces/` are both the name `my traces/`.
    /// </summary>
    public static string WordOf(CompletionContext context) =>
        context is TextCompletionContext text ? LastShellWord(text.CommandLineText[..Math.Clamp(text.CursorPosition, 0, text.CommandLineText.Length)]) : context.WordToComplete;

    /// <summary>The last word of a shell command line with its quoting removed ("" after a space): backslash escapes, '…' and "…" (an unclosed quote runs to the end).</summary>
    public static string LastShellWord(string line)
    {
        var word = new System.Text.StringBuilder();
        char quote = '\0';
        for (int i = 0; i < line.Length; i++)
        {
            char c = line[i];
            if (quote == '\'') { if (c == '\'') quote = '\0'; else word.Append(c); }
            else if (c == '\\' && i + 1 < line.Length && (quote == '\0' || line[i + 1] is '"' or '\\' or '$' or '`')) word.Append(line[++i]);
            else if (quote == '"') { if (c == '"') quote = '\0'; else word.Append(c); }
            else if (c is '\'' or '"') quote = c;
            else if (c is ' ' or '\t') word.Clear();
            else word.Append(c);
        }
        return word.ToString();
    }

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
