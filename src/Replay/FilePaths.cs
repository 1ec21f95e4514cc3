using System.Runtime.InteropServices;

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

    /// <summary>
    /// Whether two paths name one file: the same canonical path, or one existing file reached by two
    /// names that <see cref="Canonical"/> cannot tell apart: a hard link, or a path through a symbolic
    /// link to a directory (`here/t.rvt` with `here -> .`). Those are the same device and inode.
    /// </summary>
    public static bool SameFile(string a, string b)
    {
        if (string.Equals(Canonical(a), Canonical(b), StringComparison.Ordinal)) return true;
        return Stat(a) is { } sa && Stat(b) is { } sb && sa.Device == sb.Device && sa.Inode == sb.Inode;
    }

    /// <summary>
    /// The device, inode and mode of the file a path names (symbolic links followed), or null when
    /// nothing is there or when they cannot be learnt (a host other than Linux x86-64).
    /// </summary>
    public static (ulong Device, ulong Inode, uint Mode)? Stat(string path)
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64) return null;
        var buf = new byte[StatSize];
        try
        {
            if (StatCall(path, buf) != 0) return null;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { return null; }
        return (BitConverter.ToUInt64(buf, StatDevOffset), BitConverter.ToUInt64(buf, StatInoOffset), BitConverter.ToUInt32(buf, StatModeOffset));
    }

    // struct stat of Linux x86-64 (<bits/struct_stat.h>): st_dev, st_ino, st_nlink (8 bytes each), then st_mode; 144 bytes in all.
    private const int StatSize = 144, StatDevOffset = 0, StatInoOffset = 8, StatModeOffset = 24;

    [DllImport("libc", EntryPoint = "stat", SetLastError = true)]
    private static extern int StatCall([MarshalAs(UnmanagedType.LPUTF8Str)] string path, [Out] byte[] buf);
}
