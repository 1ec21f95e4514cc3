using System.Globalization;
using System.Text.Json;
using Replayvisor.Cli.Bench;
using Replayvisor.Replay.Diff;

namespace Replayvisor.Cli.Tests;

/// <summary>
/// `diff` and `bench --diff` say when a trace's keyframes could not be used to reach the pinpoint
/// window (docs/diff.md "Same guest image", step 2), and the pinpoint is still the one found with them.
/// </summary>
public class DiffKeyframeNoteTests
{
    private const ulong KeyframeInterval = 3_000_000;

    [Fact]
    public void KeyframesOfAnotherSnapshotLayoutAreNamedAndThePinpointIsUnchanged()
    {
        string a = Cli.TempFile("sched-chaos1.rvt"), b = Cli.TempFile("sched-chaos2.rvt"), stale = Cli.TempFile("stale-a.rvt");
        foreach (var (path, seed) in new[] { (a, "1"), (b, "2") })
        {
            var rec = Cli.Run("record", Cli.Guest("sched-pae"), "-o", path, "--chaos", seed, "--checkpoint-interval", "10000",
                "--max-instructions", "11000000", "--keyframe-interval", KeyframeInterval.ToString(CultureInfo.InvariantCulture));
            Assert.True(File.Exists(path), rec.ToString());
        }
        File.WriteAllBytes(stale, TraceEdit.KeyframesOfAnotherLayout(File.ReadAllBytes(a)));

        var usable = Pinpoint(Cli.Run("diff", a, b, "--json"));
        ulong start = usable.GetProperty("startIcount").GetUInt64(), keyframe = start / KeyframeInterval * KeyframeInterval;
        Assert.True(keyframe > 0, $"window from {start}: no keyframe before it");
        Assert.Equal(keyframe, usable.GetProperty("reachedFrom").GetProperty("a").GetUInt64());
        Assert.Equal(JsonValueKind.Null, usable.GetProperty("keyframesRefused").GetProperty("a").ValueKind);
        Assert.Equal(JsonValueKind.Null, usable.GetProperty("keyframesRefused").GetProperty("b").ValueKind);

        var refused = Pinpoint(Cli.Run("diff", stale, b, "--json"));
        Assert.Equal(usable.GetProperty("icount").GetUInt64(), refused.GetProperty("icount").GetUInt64());
        Assert.Equal(usable.GetProperty("registers").ToString(), refused.GetProperty("registers").ToString());
        Assert.Equal(usable.GetProperty("memory").ToString(), refused.GetProperty("memory").ToString());
        Assert.Equal(0UL, refused.GetProperty("reachedFrom").GetProperty("a").GetUInt64());
        Assert.Equal(keyframe, refused.GetProperty("reachedFrom").GetProperty("b").GetUInt64());
        Assert.Equal("were written by a different snapshot layout", refused.GetProperty("keyframesRefused").GetProperty("a").GetString());
        Assert.Equal(JsonValueKind.Null, refused.GetProperty("keyframesRefused").GetProperty("b").ValueKind);

        var text = Cli.Run("diff", stale, b);
        Assert.True(text.Code == 1, text.ToString());
        Assert.Contains($"\nnote: keyframes of {stale} were written by a different snapshot layout; reached the window from instruction 0; run `replayvisor index {stale}` to rebuild them\n", text.Stdout);
        Assert.DoesNotContain($"keyframes of {b}", text.Stdout);
        Assert.DoesNotContain("note: keyframes", Cli.Run("diff", a, b).Stdout);
    }

    [Fact]
    public void BenchDiffPrintsTheNoteOnceUnderItsTableAndInEachRowsJson()
    {
        var p = new PinpointResult(5, new MachineView(1, "nop"), new MachineView(1, "nop"), [], [], 4, 3, 10)
        {
            EndIcount = 6, WindowInstructions = 2, ReachedFromA = 0, ReachedFromB = 3, KeyframesRefusedA = "were written by a different snapshot layout",
        };
        var r = new DiffBenchResult
        {
            TraceA = "a.rvt", TraceB = "b.rvt", SameImage = true, FirstEventIcount = 6, Cold = new(1, 1), Warm = new(1, 1),
            Pinpoints = [new(10, true, p, 1, 1, null), new(10, false, p with { KeyframesRefusedA = null, ReachedFromB = 0 }, 1, 1, null), new(100, true, p, 1, 1, null)],
        };
        string note = "note: keyframes of a.rvt were written by a different snapshot layout; reached the window from instruction 0; run `replayvisor index a.rvt` to rebuild them";
        Assert.Single(DiffBenchReport.Text(r).Split('\n'), l => l == note);
        Assert.DoesNotContain("keyframes of b.rvt", DiffBenchReport.Text(r));
        string json = DiffBenchReport.Json(r);
        JsonSchemaCheck.AssertValid("bench-diff.schema.json", json);
        var rows = JsonDocument.Parse(json).RootElement.GetProperty("pinpoints").EnumerateArray().ToList();
        Assert.Equal(["were written by a different snapshot layout", null, "were written by a different snapshot layout"],
            rows.Select(x => x.GetProperty("keyframesRefused").GetProperty("a").GetString()));
    }

    private static JsonElement Pinpoint(Cli.Result r)
    {
        Assert.True(r.Code == 1, r.ToString());
        return JsonDocument.Parse(r.Stdout).RootElement.GetProperty("pinpoint").Clone();
    }
}
