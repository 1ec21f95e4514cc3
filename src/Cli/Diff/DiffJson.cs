using System.Text.Json;
using System.Text.Json.Nodes;
using Replayvisor.Replay.Diff;
using Replayvisor.Replay.Text;

namespace Replayvisor.Cli.Diff;

/// <summary>The `diff --json` document (schema in docs/diff.md; field names are stable).</summary>
public static class DiffJson
{
    public const int Schema = 1;

    public static string Render(TraceDiffResult r)
    {
        var o = new JsonObject
        {
            ["schema"] = Schema,
            ["result"] = r.Identical ? "identical" : r.AgreeToEarlyEnd ? r.EndsEarly is { Stopped: true } ? "stopped" : "incomplete" : "different",
            ["sameImage"] = r.SameImage,
            ["a"] = Side(r.A),
            ["b"] = Side(r.B),
            ["firstDivergence"] = r.FirstDifference >= 0 ? Line(r.Lines[r.FirstDifference], r.FirstDifference) : null,
            ["hunks"] = new JsonArray(r.Hunks.Select(Hunk).ToArray()),
            ["summary"] = new JsonObject
            {
                ["byKind"] = Counts(r.ByKind),
                ["byHypercall"] = Counts(r.ByHypercall),
            },
            ["console"] = new JsonArray(r.ConsoleHunks.Select(Hunk).ToArray()),
        };
        o["endsEarly"] = r.EndsEarly is { } end
            ? new JsonObject
            {
                ["side"] = end.IsA ? "a" : "b",
                ["kind"] = end.Stopped ? "stopped" : "incomplete",
                ["reason"] = end.Stopped ? "stopped " + end.Trace.StoppedBy : end.Trace.Reader.IncompleteReason,
                ["icount"] = end.Trace.FinalIcount,
                ["notCompared"] = end.NotCompared,
            }
            : null;
        if (r.FirstEvent is { } fe)
            o["firstEvent"] = new JsonObject
            {
                ["index"] = fe.Index, ["icount"] = fe.Icount,
                ["a"] = fe.A == null ? null : EventText.Json(fe.A, r.A.Symbols, r.A.IretJumpers) is var ja ? JsonNode.Parse(ja) : null,
                ["b"] = fe.B == null ? null : EventText.Json(fe.B, r.B.Symbols, r.B.IretJumpers) is var jb ? JsonNode.Parse(jb) : null,
            };
        if (r.Pinpoint is { } p) o["pinpoint"] = Pinpoint(p);
        else if (r.PinpointError != null) o["pinpoint"] = new JsonObject { ["error"] = r.PinpointError };
        return o.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = EventText.JsonOptions.Encoder }) + "\n";
    }

    private static JsonObject Side(DiffSide s) => new()
    {
        ["path"] = s.Path,
        ["image"] = s.Reader.Header.GuestImageName,
        ["imageSha256"] = s.Reader.Header.GuestImageSha256,
        ["events"] = s.Events.Count,
        ["instructions"] = s.FinalIcount,
        ["exit"] = s.Exit,
        ["incompleteReason"] = s.Reader.IncompleteReason,
    };

    private static JsonObject Event(DiffEvent e) => new()
    {
        ["kind"] = e.Kind, ["icount"] = e.Icount, ["function"] = e.Function, ["text"] = e.Text, ["detail"] = e.Detail,
    };

    private static JsonObject Line(AlignedLine l, int index) => new()
    {
        ["index"] = index,
        ["op"] = l.Op switch { AlignedLine.OnlyA => "removed", AlignedLine.OnlyB => "added", _ => "same" },
        ["a"] = l.A == null ? null : Event(l.A),
        ["b"] = l.B == null ? null : Event(l.B),
    };

    private static JsonObject Hunk(DiffHunk h) => new()
    {
        ["startA"] = h.StartA, ["countA"] = h.CountA, ["startB"] = h.StartB, ["countB"] = h.CountB,
        ["lines"] = new JsonArray(h.Lines.Select(l => (JsonNode)Line(l, -1)).ToArray()),
    };

    private static JsonArray Counts(IReadOnlyList<DiffCount> counts) =>
        new(counts.Select(c => (JsonNode)new JsonObject { ["name"] = c.Name, ["a"] = c.A, ["b"] = c.B }).ToArray());

    private static JsonObject Pinpoint(PinpointResult p) => new()
    {
        ["icount"] = p.Icount,
        ["startIcount"] = p.StartIcount,
        ["passes"] = p.Passes,
        ["instructionsExecuted"] = p.InstructionsExecuted,
        ["endIcount"] = p.EndIcount,
        ["windowInstructions"] = p.WindowInstructions,
        ["reachInstructions"] = p.ReachInstructions,
        ["reachedFrom"] = new JsonObject { ["a"] = p.ReachedFromA, ["b"] = p.ReachedFromB },
        ["keyframesRefused"] = new JsonObject { ["a"] = p.KeyframesRefusedA, ["b"] = p.KeyframesRefusedB },
        ["stateParts"] = new JsonArray(p.StateParts.Select(s => (JsonNode)s).ToArray()),
        ["a"] = new JsonObject { ["eip"] = p.A.Eip, ["instruction"] = p.A.Instruction },
        ["b"] = new JsonObject { ["eip"] = p.B.Eip, ["instruction"] = p.B.Instruction },
        ["registers"] = new JsonArray(p.Registers.Select(r => (JsonNode)new JsonObject { ["name"] = r.Name, ["a"] = r.A, ["b"] = r.B }).ToArray()),
        ["memory"] = new JsonArray(p.Memory.Select(m => (JsonNode)new JsonObject
        {
            ["machineAddress"] = m.Physical, ["address"] = m.Virtual, ["symbol"] = m.Symbol,
            ["a"] = Convert.ToHexStringLower(m.A), ["b"] = Convert.ToHexStringLower(m.B),
        }).ToArray()),
    };
}
