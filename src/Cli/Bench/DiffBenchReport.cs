using System.Text;
using System.Text.Json.Nodes;
using Replayvisor.Cli.Diff;

namespace Replayvisor.Cli.Bench;

/// <summary>`bench --diff` figures as text, or as the JSON document of docs/schemas/bench-diff.schema.json (docs/diff.md).</summary>
public static class DiffBenchReport
{
    public static string Text(DiffBenchResult r)
    {
        var sb = new StringBuilder();
        string keyframes = r.KeyframesA + r.KeyframesB > 0 ? $", {r.KeyframesA:N0} / {r.KeyframesB:N0} keyframes" : "";
        sb.AppendLine($"traces {r.TraceA} / {r.TraceB}: {r.InstructionsA:N0} / {r.InstructionsB:N0} instructions, {r.EventsA:N0} / {r.EventsB:N0} events{keyframes}, {(r.SameImage ? "one guest image" : "two guest images")}");
        string first = r.FirstEventIcount is { } f ? $"first differing recorded event at {f:N0}" : r.Identical ? "identical" : r.Agreement ?? "the aligned events differ";
        sb.AppendLine($"event diff: {r.Cold.CpuMs:F0} ms CPU ({r.Cold.WallMs:F0} ms wall) cold, {r.Warm.CpuMs:F0} ms CPU ({r.Warm.WallMs:F0} ms wall) warm; {first}");
        sb.AppendLine($"  warm CPU time / the issue's 1 s target: {r.Warm.CpuMs / 1000:F3}");
        if (r.PinpointNote != null)
        {
            sb.AppendLine($"pinpoint: {r.PinpointNote}");
            return sb.ToString();
        }
        sb.AppendLine("pinpoint per checkpoint interval (both runs; 'reach' replays to the window's start, from the last keyframe before it or from 0; 'search' runs inside it):");
        sb.AppendLine($"{"interval",12} {"window start",14} {"width",12} {"passes",6} {"search instr",14} {"/width",7} {"reach instr",14} {"search ms",10} {"reach ms",10} {"instruction",14}");
        double? firstSearch = null;
        foreach (var row in r.Pinpoints)
        {
            if (row.Pinpoint is not { } p)
            {
                sb.AppendLine($"{row.Interval,12:N0}  {row.Error}");
                continue;
            }
            ulong width = p.EndIcount - p.StartIcount;
            firstSearch ??= row.SearchMs;
            string from = row.Keyframes ? $"from keyframes {p.ReachedFromA:N0} / {p.ReachedFromB:N0}" : "from 0";
            sb.AppendLine($"{row.Interval,12:N0} {p.StartIcount,14:N0} {width,12:N0} {p.Passes,6} {p.WindowInstructions,14:N0} {(double)p.WindowInstructions / width,7:F2} {p.ReachInstructions,14:N0} {row.SearchMs,10:F1} {row.ReachMs,10:F1} {p.Icount,14:N0}  ({from}; search {row.SearchMs / firstSearch.Value:F1}x the first row's)");
        }
        foreach (string note in r.Pinpoints.Where(row => row.Keyframes && row.Pinpoint != null)
                     .SelectMany(row => KeyframeNotes.Lines(row.Pinpoint!, r.TraceA, r.TraceB)).Distinct())
            sb.AppendLine(note);
        return sb.ToString();
    }

    public static string Json(DiffBenchResult r) => new JsonObject
    {
        ["benchmark"] = "diff",
        ["a"] = Side(r.TraceA, r.InstructionsA, r.EventsA, r.KeyframesA),
        ["b"] = Side(r.TraceB, r.InstructionsB, r.EventsB, r.KeyframesB),
        ["sameImage"] = r.SameImage,
        ["identical"] = r.Identical,
        ["firstEventIcount"] = r.FirstEventIcount,
        ["eventDiff"] = new JsonObject
        {
            ["cold"] = Time(r.Cold),
            ["warm"] = Time(r.Warm),
            ["targetRatio"] = Math.Round(r.Warm.CpuMs / 1000, 4),
        },
        ["pinpointNote"] = r.PinpointNote,
        ["pinpoints"] = new JsonArray(r.Pinpoints.Select(Row).ToArray()),
    }.ToJsonString(JsonOutput.Options) + "\n";

    private static JsonObject Side(string trace, ulong instructions, int events, int keyframes) => new()
    {
        ["trace"] = trace, ["instructions"] = instructions, ["events"] = events, ["keyframes"] = keyframes,
    };

    private static JsonObject Time(DiffBenchTime t) => new() { ["cpuMs"] = Math.Round(t.CpuMs, 3), ["wallMs"] = Math.Round(t.WallMs, 3) };

    private static JsonNode Row(DiffBenchRow row)
    {
        var o = new JsonObject { ["interval"] = row.Interval, ["keyframes"] = row.Keyframes };
        if (row.Pinpoint is not { } p)
        {
            o["error"] = row.Error;
            return o;
        }
        o["windowStart"] = p.StartIcount;
        o["windowEnd"] = p.EndIcount;
        o["passes"] = p.Passes;
        o["searchInstructions"] = p.WindowInstructions;
        o["reachInstructions"] = p.ReachInstructions;
        o["reachedFrom"] = new JsonObject { ["a"] = p.ReachedFromA, ["b"] = p.ReachedFromB };
        o["keyframesRefused"] = new JsonObject { ["a"] = p.KeyframesRefusedA, ["b"] = p.KeyframesRefusedB };
        o["searchMs"] = Math.Round(row.SearchMs, 3);
        o["reachMs"] = Math.Round(row.ReachMs, 3);
        o["instruction"] = p.Icount;
        return o;
    }
}
