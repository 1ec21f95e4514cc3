using System.Globalization;
using System.Text.Json;
using Replayvisor.Engine.Trace;

namespace Replayvisor.Cli.Tests;

/// <summary>
/// A trace whose recorder was killed ends after its last complete chunk (docs/record-replay.md "Killed and
/// interrupted recorders"; here cut there, as such a recorder leaves the file). `export`, `dump` and `diff` say that
/// it is incomplete and where it ends: it must never look like a run that ended there, or like a divergence.
/// </summary>
public class IncompleteTraceTests
{
    private static readonly string Full = Path.Combine(Cli.RepoRoot, "traces", "sched-chaos.rvt");

    /// <summary>The golden trace cut after its first chunk, and the count of the last event it keeps.</summary>
    private static readonly Lazy<(string Path, ulong EndsAt)> Cut = new(() => CutAfterFirstChunk(File.ReadAllBytes(Full), "cut.rvt"));

    private static (string Path, ulong EndsAt) CutAfterFirstChunk(byte[] bytes, string name)
    {
        using var reader = TraceReader.Open(new MemoryStream(bytes));
        Assert.True(reader.Index.Count >= 2, $"{reader.Index.Count} chunks");
        string path = Cli.TempFile(name);
        File.WriteAllBytes(path, bytes[..(int)reader.Index[1].Offset]);
        return (path, reader.Index[0].LastIcount);
    }

    private static byte[] Rechunked(byte[] trace, int eventsPerChunk)
    {
        using var reader = TraceReader.Open(new MemoryStream(trace));
        var output = new MemoryStream();
        using (var w = new TraceWriter(output, reader.Header, reader.GuestImage.Span, new TraceWriterOptions { MaxChunkEvents = eventsPerChunk }, leaveOpen: true))
        {
            foreach (var e in reader.ReadEvents()) w.Append(e);
            w.Complete(reader.Summary!);
        }
        return output.ToArray();
    }

    private static string N(ulong n) => n.ToString("N0", CultureInfo.InvariantCulture);

    [Fact]
    public void DiffOfAKilledRecordingAgainstTheWholeRunSaysItEndsEarlyNotThatTheyDiffer()
    {
        var (cut, endsAt) = Cut.Value;
        var r = Cli.Run("diff", Full, cut);
        // Exit 12 as `replay` of such a trace: only a prefix could be compared, and it agrees.
        Cli.AssertOneLineError(r, 12, $"{cut}: the trace is incomplete");
        Assert.Contains($"the runs agree up to its end at instruction {N(endsAt)}", r.Stderr);
        Assert.Contains($"B ends early: {cut} is incomplete", r.Stdout);
        Assert.Contains("not compared: A's ", r.Stdout);
        Assert.DoesNotContain("divergence", r.Stdout);
        Assert.DoesNotContain("@@", r.Stdout);
        // Either way round.
        var ba = Cli.Run("diff", cut, Full);
        Cli.AssertOneLineError(ba, 12, "the trace is incomplete");
        Assert.Contains($"A ends early: {cut} is incomplete", ba.Stdout);

        var j = Cli.Run("diff", Full, cut, "--json");
        Assert.Equal(12, j.Code);
        JsonSchemaCheck.AssertValid("diff.schema.json", j.Stdout);
        var root = JsonDocument.Parse(j.Stdout).RootElement;
        Assert.Equal("incomplete", root.GetProperty("result").GetString());
        var end = root.GetProperty("endsEarly");
        Assert.Equal("b", end.GetProperty("side").GetString());
        Assert.Equal(endsAt, end.GetProperty("icount").GetUInt64());
        Assert.True(end.GetProperty("notCompared").GetInt32() > 0);
        Assert.Equal(JsonValueKind.Null, root.GetProperty("firstDivergence").ValueKind);
        Assert.Equal(0, root.GetProperty("hunks").GetArrayLength());
        Assert.False(root.TryGetProperty("pinpoint", out _), "nothing differs, so nothing is pinpointed");
        Assert.Equal(JsonValueKind.Null, root.GetProperty("a").GetProperty("incompleteReason").ValueKind);
        Assert.False(string.IsNullOrEmpty(root.GetProperty("b").GetProperty("incompleteReason").GetString()));
    }

    [Fact]
    public void ADifferenceInsideAKilledRecordingIsStillADivergenceAndTheReportSaysTheTraceIsIncomplete()
    {
        // The first console_io's result one higher, written in chunks of 64 events (so that it lies in the first), then cut after that chunk.
        var (cut, endsAt) = CutAfterFirstChunk(Rechunked(TraceEdit.ChangeFirstHypercallResult(File.ReadAllBytes(Full)), 64), "changed-cut.rvt");
        var r = Cli.Run("diff", Full, cut, "--no-pinpoint");
        Assert.True(r.Code == 1, r.ToString());
        Assert.Contains("first divergence", r.Stdout);
        Assert.Contains($"note: B ({cut}) is incomplete", r.Stdout);
        Assert.Contains($"ends at instruction {N(endsAt)}", r.Stdout);
        var j = Cli.Run("diff", Full, cut, "--no-pinpoint", "--json");
        Assert.Equal(1, j.Code);
        JsonSchemaCheck.AssertValid("diff.schema.json", j.Stdout);
        var root = JsonDocument.Parse(j.Stdout).RootElement;
        Assert.Equal("different", root.GetProperty("result").GetString());
        Assert.Equal("b", root.GetProperty("endsEarly").GetProperty("side").GetString());
        // What A did after B's end is not shown as events B lacks.
        foreach (var hunk in root.GetProperty("hunks").EnumerateArray())
            foreach (var line in hunk.GetProperty("lines").EnumerateArray())
                if (line.GetProperty("a").ValueKind != JsonValueKind.Null)
                    Assert.True(line.GetProperty("a").GetProperty("icount").GetUInt64() <= endsAt, line.ToString());
    }

    [Fact]
    public void ExportOfAKilledRecordingSaysWhereTheTimelineEnds()
    {
        var (cut, endsAt) = Cut.Value;
        string json = Cli.TempFile("cut.json");
        var r = Cli.Run("export", cut, "-o", json);
        Assert.True(r.Code == 0, r.ToString());
        Assert.Contains($"export: note: {cut} is incomplete (", r.Stderr);
        Assert.Contains($"the timeline ends at instruction {N(endsAt)}, its last recorded event", r.Stderr);
        var root = JsonDocument.Parse(File.ReadAllText(json)).RootElement;
        var other = root.GetProperty("otherData");
        Assert.False(other.GetProperty("complete").GetBoolean());
        Assert.False(string.IsNullOrEmpty(other.GetProperty("incompleteReason").GetString()));
        Assert.Equal(endsAt, other.GetProperty("instructions").GetUInt64());
        var marker = Assert.Single(root.GetProperty("traceEvents").EnumerateArray(), e => e.GetProperty("name").GetString() == "trace ends here (incomplete)");
        Assert.Equal(endsAt / 1000.0, marker.GetProperty("ts").GetDouble(), 6);
        // A complete trace says so, with no note and no marker.
        string whole = Cli.TempFile("whole.json");
        var w = Cli.Run("export", Full, "-o", whole);
        Assert.DoesNotContain("incomplete", w.Stderr);
        var wroot = JsonDocument.Parse(File.ReadAllText(whole)).RootElement;
        Assert.True(wroot.GetProperty("otherData").GetProperty("complete").GetBoolean());
        Assert.DoesNotContain(wroot.GetProperty("traceEvents").EnumerateArray(), e => e.GetProperty("name").GetString()!.Contains("incomplete"));
    }

    /// <summary>
    /// `dump` of a killed recording says on stderr that the trace is incomplete and where its events end, as export
    /// does; its events on stdout are unchanged and the exit code stays 0. Before, it said nothing: the last event
    /// looked like the end of the run. A dump whose --to stops before the end has nothing to say.
    /// </summary>
    [Fact]
    public void DumpOfAKilledRecordingSaysWhereItsEventsEnd()
    {
        var (cut, endsAt) = Cut.Value;
        var r = Cli.Run("dump", cut);
        Assert.True(r.Code == 0, r.ToString());
        Assert.StartsWith($"dump: note: {cut} is incomplete (", r.Stderr);
        Assert.Contains($"its events end at instruction {N(endsAt)}, where the recording stops", r.Stderr);
        Assert.Single(r.Stderr.TrimEnd().Split('\n'));
        Assert.NotEqual("", r.Stdout);
        Assert.StartsWith(r.Stdout, Cli.Run("dump", Full).Stdout); // the cut trace's events are the whole run's first ones
        Assert.Equal("", Cli.Run("dump", cut, "--to", "1000").Stderr);
        Assert.Equal("", Cli.Run("dump", Full).Stderr);
    }
}
