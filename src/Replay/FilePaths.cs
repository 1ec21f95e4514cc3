namespace Replayvisor.Replay;

/// <summary>Which file a path names, for the checks that refuse one file given twice (diff, record, export, index).</summary>
public static class FilePaths
{
    /// <summary>The file a path names: the final target of a symbolic link, else the full path.</summary>
    public static string Canonical(string path)
    {
        // From the full path: .NET resolves a relative link target against the directory of the path given ("" for "t.rvt": the root).
        string full = Path.GetFullPath(path);
        try { return File.ResolveLinkTarget(full, returnFinalTarget: true)?.FullName ?? full; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return full; }
    }
}
