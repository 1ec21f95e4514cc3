using System.CommandLine;
using System.CommandLine.Parsing;

namespace Replayvisor.Cli;

/// <summary>
/// What the command line does with the file paths it is given: an empty path is misuse (exit 2,
/// at parse time), and a path that cannot be opened for reading gets one line naming why.
/// </summary>
public static class InputFiles
{
    /// <summary>An empty path ("") names no file: a parse error (exit 2), not an exception further on.</summary>
    public static Argument<T> NoEmptyPath<T>(this Argument<T> argument)
    {
        argument.Validators.Add(r => Check(r, $"<{argument.HelpName ?? argument.Name}>"));
        return argument;
    }

    /// <inheritdoc cref="NoEmptyPath{T}(Argument{T})"/>
    public static Option<T> NoEmptyPath<T>(this Option<T> option)
    {
        option.Validators.Add(r => Check(r, option.Name));
        return option;
    }

    private static void Check(SymbolResult result, string name)
    {
        if (result.Tokens.Any(t => t.Value.Length == 0)) result.AddError($"{name}: an empty path names no file");
    }

    /// <summary>Opens a file to read, turning each way it can fail into its exit code and one line.</summary>
    public static FileStream OpenRead(string path)
    {
        try { return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw CannotOpen(path, e); }
    }

    public static CliException CannotOpen(string path, Exception e) => e switch
    {
        FileNotFoundException or DirectoryNotFoundException => new CliException(ExitCodes.FileNotFound, $"{path}: no such file"),
        // .NET reports a directory opened as a file as access denied: say what it is.
        UnauthorizedAccessException when Directory.Exists(path) => new CliException(ExitCodes.IoError, $"{path}: is a directory, not a file"),
        UnauthorizedAccessException => new CliException(ExitCodes.IoError, $"{path}: permission denied"),
        _ => new CliException(ExitCodes.IoError, $"{path}: {e.Message}"),
    };

    /// <summary>
    /// Refuses an output path that names an input of the same command (the path itself or a
    /// symbolic link to it): writing there would destroy the input before (or while) it is read.
    /// </summary>
    public static void RefuseOverwritingInput(string output, string input, string what)
    {
        if (Canonical(output) == Canonical(input))
            throw new CliException(ExitCodes.Usage, $"{output}: is the {what} itself: writing it would destroy it (choose another output file)");
    }

    private static string Canonical(string path)
    {
        try { return File.ResolveLinkTarget(path, returnFinalTarget: true)?.FullName ?? Path.GetFullPath(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return Path.GetFullPath(path); }
    }
}
