using System.Globalization;
using System.Text.RegularExpressions;

namespace Replayvisor.Cli.Tests;

/// <summary>`replayvisor bench --diff A B`: the rows it prints are the pinpoints of the intervals it names (counts only; the times are not checked).</summary>
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
}
