using System.Text.RegularExpressions;

namespace Replayvisor.Cli.Tests;

/// <summary>`replayvisor index` and `record --keyframe-interval` (docs/time-travel.md "Keyframes").</summary>
public class IndexCommandTests
{
    private static string CopyOf(string golden)
    {
        string path = Cli.TempFile(golden);
        File.Copy(Path.Combine(Cli.RepoRoot, "traces", golden), path);
        return path;
    }

    private static long[] KeyframeOffsets(string path)
    {
        using var reader = Engine.Trace.TraceReader.Open(File.OpenRead(path));
        return [.. reader.Keyframes.Select(k => k.Offset)];
    }

    [Fact]
    public void IndexInPlaceKeepsTheTraceReplayableAndSeeksFromKeyframes()
    {
        string trace = CopyOf("sched-chaos.rvt"); // 61,560,367 instructions
        var r = Cli.Run("index", trace, "--interval", "16777216");
        Assert.True(r.Code == 0, r.ToString());
        Assert.Contains("3 keyframes, one every 16777216 instructions", r.Stderr);
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(trace)!, ".*indexing*")); // the temporary file was renamed
        var info = Cli.Run("info", trace);
        Assert.Contains("(format 4, complete)", info.Stdout);
        Assert.Matches(@"keyframes:\s+3 \(instructions 16,777,216 to 50,331,648\)", info.Stdout);
        Assert.Equal(0, Cli.Run("replay", trace, "--quiet").Code);
        var debug = Cli.RunWithInput("goto 51000000\nwhen\n", "debug", trace);
        Assert.True(debug.Code == 0, debug.ToString());
        Assert.Contains("instruction 51000000, event index", debug.Stdout);
    }

    /// <summary>
    /// The indexed trace is a new file renamed over the old one: it keeps the old one's permissions. Before, it got
    /// the umask's 0644, so indexing a private (0600) trace, whose events may hold typed console input, let every
    /// user read it, and a read-only (0444) one became writable. `-o` over an existing file keeps that file's mode too.
    /// </summary>
    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void IndexKeepsThePermissionsOfTheFileItReplaces()
    {
        foreach (var mode in new[] { UnixFileMode.UserRead | UnixFileMode.UserWrite, UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead })
        {
            string trace = CopyOf("sched-chaos.rvt");
            File.SetUnixFileMode(trace, mode);
            var r = Cli.Run("index", trace, "--interval", "33554432");
            Assert.True(r.Code == 0, r.ToString());
            Assert.Single(KeyframeOffsets(trace));
            Assert.Equal(mode, File.GetUnixFileMode(trace));
        }
        string source = CopyOf("sched-chaos.rvt");
        string output = Cli.TempFile("indexed.rvt");
        File.WriteAllText(output, "an older file");
        File.SetUnixFileMode(output, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        Assert.Equal(0, Cli.Run("index", source, "--interval", "33554432", "-o", output).Code);
        Assert.Single(KeyframeOffsets(output));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(output));
    }

    [Fact]
    public void IndexToAnotherFileLeavesTheOriginalAsItWas()
    {
        string trace = CopyOf("sched-chaos.rvt");
        byte[] before = File.ReadAllBytes(trace);
        string output = Cli.TempFile("indexed.rvt");
        Assert.Equal(0, Cli.Run("index", trace, "--interval", "33554432", "-o", output).Code);
        Assert.Equal(before, File.ReadAllBytes(trace));
        Assert.Single(KeyframeOffsets(output));
    }

    [Fact]
    public void ADamagedKeyframeIsOneLineExitNineWithItsOffset()
    {
        string trace = CopyOf("sched-chaos.rvt");
        Assert.Equal(0, Cli.Run("index", trace, "--interval", "16777216").Code);
        long offset = KeyframeOffsets(trace)[1]; // the keyframe at 33,554,432, the one goto 40000000 starts from
        using (var f = File.OpenWrite(trace)) { f.Position = offset + 100; f.WriteByte(0x5A); f.WriteByte(0xA5); }
        var r = Cli.RunWithInput("goto 40000000\nwhen\n", "debug", trace);
        Cli.AssertOneLineError(r, 9, offset.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.DoesNotContain("instruction 40000000", r.Stdout);
    }

    [Fact]
    public void TracesThatCannotHoldKeyframesAreRefused()
    {
        var v1 = Cli.Run("index", Path.Combine(Cli.RepoRoot, "traces", "v1", "echo.rvt"), "-o", Cli.TempFile("x.rvt"));
        Cli.AssertOneLineError(v1, 24, "format 1");
        string cut = CopyOf("events.rvt");
        var bytes = File.ReadAllBytes(cut);
        File.WriteAllBytes(cut, bytes[..(bytes.Length - 30)]);
        Cli.AssertOneLineError(Cli.Run("index", cut), 24, "incomplete");
        Cli.AssertOneLineError(Cli.Run("index", CopyOf("events.rvt"), "--interval", "0"), 2, "--interval 0");
    }

    /// <summary>
    /// Keyframes closer than 2^18 instructions are refused (an interval of 1 wrote 840 MB in 60 s for hello), and
    /// `record` refuses them before it runs the guest: no recording is made for an index that would be refused.
    /// </summary>
    [Fact]
    public void KeyframesCloserThanTheMinimumAreRefusedBeforeAnyWork()
    {
        string trace = CopyOf("sched-chaos.rvt");
        byte[] before = File.ReadAllBytes(trace);
        Cli.AssertOneLineError(Cli.Run("index", trace, "--interval", "1"), 2, "--interval 1: keyframes must be at least 262,144 (2^18) instructions apart");
        Cli.AssertOneLineError(Cli.Run("index", trace, "--interval", "262143"), 2, "--interval 262143: keyframes must be at least 262,144");
        Assert.Equal(before, File.ReadAllBytes(trace));
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(trace)!, ".*indexing*"));
        string recorded = Cli.TempFile("sched.rvt");
        var r = Cli.Run("record", Cli.Guest("sched-pae"), "-o", recorded, "--keyframe-interval", "1");
        Cli.AssertOneLineError(r, 2, "--keyframe-interval 1: keyframes must be at least 262,144");
        Assert.Equal("", r.Stdout); // the guest did not run
        Assert.False(File.Exists(recorded));
        // The minimum itself is accepted.
        var ok = Cli.Run("index", trace, "--interval", "262144", "-o", Cli.TempFile("min.rvt"));
        Assert.True(ok.Code == 0, ok.ToString());
        Assert.Contains("234 keyframes, one every 262144 instructions", ok.Stderr);
    }

    [Fact]
    public void RecordWithAKeyframeIntervalWritesAnIndexedTrace()
    {
        string trace = Cli.TempFile("events.rvt");
        var r = Cli.Run("record", Cli.Guest("sched-pae"), "-o", trace, "--keyframe-interval", "16777216");
        Assert.True(r.Code == 0, r.ToString());
        var info = Cli.Run("info", trace, "--json");
        Assert.Matches("\"formatVersion\": ?4", info.Stdout);
        Assert.Matches("\"keyframes\": ?3", info.Stdout);
        Assert.Equal(0, Cli.Run("replay", trace, "--quiet").Code);
        Assert.Matches(new Regex("3 keyframes"), r.Stderr);
    }
}
