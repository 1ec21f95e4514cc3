using System.CommandLine;
using System.CommandLine.Parsing;
using Replayvisor.Replay;

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

    /// <summary>An output file that cannot be created, in one line naming why when .NET's words would mislead.</summary>
    public static CliException CannotWrite(string path, Exception e) => new(ExitCodes.IoError, e switch
    {
        DirectoryNotFoundException => $"{path}: cannot write: its directory does not exist",
        // .NET reports a directory opened as a file as access denied.
        UnauthorizedAccessException when Directory.Exists(path) => $"{path}: cannot write: is a directory",
        _ => $"{path}: cannot write: {e.Message}",
    });

    /// <summary>
    /// `-o -`: standard output, as the convention goes (a file named "-" is still `-o ./-`). Only an
    /// output that is a stream of text can go there (export); the others refuse it with <see cref="RefuseStandardOutput"/>.
    /// </summary>
    public static bool IsStandardOutput(string output) => output == "-";

    /// <summary>
    /// Refuses `-o -` for an output that cannot be a stream on standard output: a trace is read back by
    /// seeking (its chunk index is at its end), so one on a pipe could never be opened; before, "-" became a file of that name.
    /// </summary>
    public static void RefuseStandardOutput(string output, string command, string why)
    {
        if (IsStandardOutput(output))
            throw new CliException(ExitCodes.Usage, $"{command} -o -: cannot write to standard output: {why} (name a file; ./- for a file called '-')");
    }

    /// <summary>
    /// Refuses an output path that names an input of the same command (the path itself, a symbolic
    /// link to it, a hard link, a path through a linked directory): writing there would destroy the
    /// input before (or while) it is read.
    /// </summary>
    public static void RefuseOverwritingInput(string output, string input, string what)
    {
        if (FilePaths.SameFile(output, input))
            throw new CliException(ExitCodes.Usage, $"{output}: is the {what} itself: writing it would destroy it (choose another output file)");
    }

    /// <summary>
    /// Whether something other than a regular file is at <paramref name="path"/> (a device such as
    /// /dev/null, a pipe, a socket, a directory): a new file must not be renamed over it. False when
    /// nothing is there, or when the file type cannot be learnt (a host other than Linux x86-64).
    /// </summary>
    public static bool IsSpecialFile(string path)
    {
        if (Directory.Exists(path)) return true;
        return FilePaths.Stat(path) is { } stat && (stat.Mode & SIfmt) != SIfreg;
    }

    private const uint SIfmt = 0xF000, SIfreg = 0x8000;
}
