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
        string trace = CopyOf("events.rvt");
        var r = Cli.Run("index", trace, "--interval", "16384");
        Assert.True(r.Code == 0, r.ToString());
        Assert.Contains("6 keyframes, one every 16384 instructions", r.Stderr);
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(trace)!, ".*indexing*")); // the temporary file was renamed
        var info = Cli.Run("info", trace);
        Assert.Contains("(format 4, complete)", info.Stdout);
        Assert.Matches(@"keyframes:\s+6 \(instructions 16,384 to 98,304\)", info.Stdout);
        Assert.Equal(0, Cli.Run("replay", trace, "--quiet").Code);
        var debug = Cli.RunWithInput("goto 90000\nwhen\n", "debug", trace);
        Assert.True(debug.Code == 0, debug.ToString());
        Assert.Contains("instruction 90000, event index", debug.Stdout);
    }

    [Fact]
    public void IndexToAnotherFileLeavesTheOriginalAsItWas()
    {
        string trace = CopyOf("events.rvt");
        byte[] before = File.ReadAllBytes(trace);
        string output = Cli.TempFile("indexed.rvt");
        Assert.Equal(0, Cli.Run("index", trace, "--interval", "50000", "-o", output).Code);
        Assert.Equal(before, File.ReadAllBytes(trace));
        Assert.Single(KeyframeOffsets(output));
    }

    [Fact]
    public void ADamagedKeyframeIsOneLineExitNineWithItsOffset()
    {
        string trace = CopyOf("events.rvt");
        Assert.Equal(0, Cli.Run("index", trace, "--interval", "16384").Code);
        long offset = KeyframeOffsets(trace)[3]; // the keyframe at 65536, the one goto 80000 starts from
        using (var f = File.OpenWrite(trace)) { f.Position = offset + 100; f.WriteByte(0x5A); f.WriteByte(0xA5); }
        var r = Cli.RunWithInput("goto 80000\nwhen\n", "debug", trace);
        Cli.AssertOneLineError(r, 9, offset.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.DoesNotContain("instruction 80000", r.Stdout);
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

    [Fact]
    public void RecordWithAKeyframeIntervalWritesAnIndexedTrace()
    {
        string trace = Cli.TempFile("events.rvt");
        var r = Cli.Run("record", Cli.Guest("events-pae"), "-o", trace, "--keyframe-interval", "30000");
        Assert.True(r.Code == 0, r.ToString());
        var info = Cli.Run("info", trace, "--json");
        Assert.Matches("\"formatVersion\": ?4", info.Stdout);
        Assert.Matches("\"keyframes\": ?3", info.Stdout);
        Assert.Equal(0, Cli.Run("replay", trace, "--quiet").Code);
        Assert.Matches(new Regex("3 keyframes"), r.Stderr);
    }
}
