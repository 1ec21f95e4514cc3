using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Replayvisor.Cli.Tests;

/// <summary>`replayvisor bench --diff A B [--json]`: the rows it prints are the pinpoints of the intervals it names (counts only; the times are not checked).</summary>
public class DiffBenchTests
{
    [Fact]
    public void EachIntervalsPinpointStartsAtItsLastCommonCheckpointAndFindsTheSameInstruction()
    {
        string a = Cli.TempFile("sched-chaos1.rvt"), b = Cli.TempFile("sched-chaos2.rvt");
        foreach (var (path, seed) in new[] { (a, "1"), (b, "2") })
        {
            var rec = Cli.Run("record", Cli.Guest("sched-pae"), "-o", path, "--chaos", seed, "--checkpoint-interval", "10000", "--max-instructions", "11000000");
            Assert.True(File.Exists(path), rec.ToString());
        }
        var r = Cli.Run("bench", "--diff", a, b);
        Assert.True(r.Code == 0, r.ToString());
        Assert.Contains("11,000,000 / 11,000,000 instructions", r.Stdout);
        Assert.Matches(@"event diff: \d+ ms CPU", r.Stdout);
        var rows = Regex.Matches(r.Stdout, @"^ *([\d,]+) +([\d,]+) +([\d,]+) +(\d+) +([\d,]+) +[\d.]+ +([\d,]+) +[\d.]+ +[\d.]+ +([\d,]+)", RegexOptions.Multiline)
            .Select(m => m.Groups.Values.Skip(1).Select(g => ulong.Parse(g.Value, NumberStyles.AllowThousands, CultureInfo.InvariantCulture)).ToArray()).ToList();
        Assert.Equal([10_000UL, 100_000, 1_000_000], rows.Select(x => x[0]));
        ulong found = rows[0][6];
        foreach (var (interval, start, width, _, search, reach, instruction) in rows.Select(x => (x[0], x[1], x[2], x[3], x[4], x[5], x[6])))
        {
            Assert.Equal(found, instruction);
            Assert.Equal(0UL, start % interval); // a checkpoint such a recording would have taken
            Assert.True(start <= instruction && instruction < start + width && width <= interval + 1, $"interval {interval}: window {start} + {width}, instruction {instruction}");
            Assert.Equal(2 * start, reach); // each run replayed to the window's start once
            Assert.True(search >= 2 * (instruction - start), $"interval {interval}: {search} instructions searched");
        }
    }

    [Fact]
    public void ARunStoppedAtItsLimitThatAgreesWithTheWholeRunHasNothingToPinpoint()
    {
        string whole = Cli.TempFile("sched-whole.rvt"), limited = Cli.TempFile("sched-30m.rvt");
        Assert.Equal(0, Cli.Run("record", Cli.Guest("sched"), "-o", whole).Code);
        Assert.Equal(4, Cli.Run("record", Cli.Guest("sched"), "-o", limited, "--max-instructions", "30000000").Code);
        const string Agreement = "the runs agree up to instruction 30,000,000, where B was stopped at its instruction limit";
        var r = Cli.Run("bench", "--diff", whole, limited);
        Assert.True(r.Code == 0, r.ToString());
        // Not "the aligned events differ", and no pinpoint rows that find nothing.
        Assert.Matches($@"\nevent diff: .* warm; {Agreement}\n", r.Stdout);
        Assert.Contains($"pinpoint: nothing to pinpoint: {Agreement}\n", r.Stdout);
        Assert.DoesNotContain("interval", r.Stdout);
        var j = Cli.Run("bench", "--diff", whole, limited, "--json");
        Assert.True(j.Code == 0, j.ToString());
        JsonSchemaCheck.AssertValid("bench-diff.schema.json", j.Stdout);
        var root = JsonDocument.Parse(j.Stdout).RootElement;
        Assert.Equal($"nothing to pinpoint: {Agreement}", root.GetProperty("pinpointNote").GetString());
        Assert.Equal(0, root.GetProperty("pinpoints").GetArrayLength());
    }

    [Fact]
    public void TheJsonFormMatchesItsSchemaAndEachIntervalIsMeasuredFromKeyframesAndFromZero()
    {
        const ulong Keyframes = 3_000_000; // not a divisor of the window's start: each run replays a stretch from its keyframe
        string a = Cli.TempFile("sched-chaos1-kf.rvt"), b = Cli.TempFile("sched-chaos2-kf.rvt");
        foreach (var (path, seed) in new[] { (a, "1"), (b, "2") })
        {
            var rec = Cli.Run("record", Cli.Guest("sched-pae"), "-o", path, "--chaos", seed, "--checkpoint-interval", "10000",
                "--max-instructions", "11000000", "--keyframe-interval", Keyframes.ToString(CultureInfo.InvariantCulture));
            Assert.True(File.Exists(path), rec.ToString());
        }
        var r = Cli.Run("bench", "--diff", a, b, "--json");
        Assert.True(r.Code == 0, r.ToString());
        JsonSchemaCheck.AssertValid("bench-diff.schema.json", r.Stdout);
        var j = JsonDocument.Parse(r.Stdout).RootElement;
        Assert.Equal(a, j.GetProperty("a").GetProperty("trace").GetString()); // the path as given, so a suggested `replayvisor index` works from here
        Assert.Equal(11_000_000UL, j.GetProperty("a").GetProperty("instructions").GetUInt64());
        Assert.Equal(3, j.GetProperty("a").GetProperty("keyframes").GetInt32()); // at 3M, 6M, 9M
        Assert.True(j.GetProperty("sameImage").GetBoolean());
        Assert.Equal(JsonValueKind.Null, j.GetProperty("pinpointNote").ValueKind);
        var rows = j.GetProperty("pinpoints").EnumerateArray().ToList();
        Assert.Equal([10_000UL, 10_000, 100_000, 100_000, 1_000_000, 1_000_000], rows.Select(x => x.GetProperty("interval").GetUInt64()));
        ulong found = rows[0].GetProperty("instruction").GetUInt64();
        for (int i = 0; i < rows.Count; i += 2)
        {
            var (fromKeyframes, fromZero) = (rows[i], rows[i + 1]);
            Assert.True(fromKeyframes.GetProperty("keyframes").GetBoolean());
            Assert.False(fromZero.GetProperty("keyframes").GetBoolean());
            ulong start = fromZero.GetProperty("windowStart").GetUInt64();
            foreach (var row in new[] { fromKeyframes, fromZero })
            {
                Assert.Equal(found, row.GetProperty("instruction").GetUInt64());
                Assert.Equal(start, row.GetProperty("windowStart").GetUInt64());
                Assert.Equal(fromZero.GetProperty("searchInstructions").GetUInt64(), row.GetProperty("searchInstructions").GetUInt64());
            }
            Assert.Equal(2 * start, fromZero.GetProperty("reachInstructions").GetUInt64());
            // From keyframes each run replays only from the last keyframe at or before the window's start.
            ulong keyframe = start / Keyframes * Keyframes;
            Assert.Equal(keyframe, fromKeyframes.GetProperty("reachedFrom").GetProperty("a").GetUInt64());
            Assert.Equal(keyframe, fromKeyframes.GetProperty("reachedFrom").GetProperty("b").GetUInt64());
            Assert.Equal(2 * (start - keyframe), fromKeyframes.GetProperty("reachInstructions").GetUInt64());
            Assert.True(keyframe > 0 && start - keyframe < Keyframes, $"keyframe {keyframe}, window from {start}");
        }
    }
}
