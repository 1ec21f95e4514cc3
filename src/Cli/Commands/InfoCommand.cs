using System.Text.Json;
using System.Text.Json.Nodes;
using Replayvisor.Engine.Trace;
using Replayvisor.Replay.Text;

namespace Replayvisor.Cli.Commands;

/// <summary>`replayvisor info trace.rvt [--json]`: what a trace holds.</summary>
public static class InfoCommand
{
    public static int Run(string path, bool json, TextWriter output)
    {
        using var reader = TraceFiles.Open(path);
        var byKind = new SortedDictionary<string, long>(StringComparer.Ordinal);
        var byHypercall = new SortedDictionary<string, long>(StringComparer.Ordinal);
        ulong first = 0, last = 0;
        bool any = false;
        string? damage = null;
        try
        {
            foreach (var e in reader.ReadEvents())
            {
                if (!any) { first = e.Icount; any = true; }
                last = e.Icount;
                string kind = EventText.Kind(e);
                byKind[kind] = byKind.GetValueOrDefault(kind) + 1;
                if (e is HypercallEvent h)
                {
                    string name = HypercallNames.Name(h.Number);
                    byHypercall[name] = byHypercall.GetValueOrDefault(name) + 1;
                }
            }
        }
        catch (TraceFormatException e) { damage = e.Message; }
        var h0 = reader.Header;
        var stats = reader.Stats;
        ulong instructions = reader.Summary?.FinalIcount ?? last;
        double ratio = stats.CompressedBytes == 0 ? 1 : (double)stats.UncompressedBytes / stats.CompressedBytes;
        long fileBytes = new FileInfo(path).Length;
        if (json)
        {
            var o = new JsonObject
            {
                ["path"] = path,
                ["formatVersion"] = reader.FormatVersion,
                ["engineBuild"] = h0.EngineBuild,
                ["guest"] = new JsonObject { ["name"] = h0.GuestImageName, ["kind"] = h0.GuestKind, ["sha256"] = h0.GuestImageSha256, ["bytes"] = reader.GuestImage.Length },
                ["options"] = new JsonObject(h0.Options.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
                ["complete"] = reader.Complete,
                ["incompleteReason"] = reader.IncompleteReason,
                ["damage"] = damage,
                ["instructions"] = instructions,
                ["guestTimeNs"] = reader.Summary?.GuestTimeNs,
                ["firstEventIcount"] = first,
                ["exit"] = reader.Summary?.Exit.ToString(),
                ["shutdownReason"] = reader.Summary?.Reason.ToString(),
                ["events"] = stats.EventCount,
                ["eventsByKind"] = new JsonObject(byKind.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
                ["hypercallsByName"] = new JsonObject(byHypercall.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
                ["chunks"] = stats.ChunkCount,
                ["fileBytes"] = fileBytes,
                ["compressedBytes"] = stats.CompressedBytes,
                ["uncompressedBytes"] = stats.UncompressedBytes,
                ["compressionRatio"] = Math.Round(ratio, 3),
                ["keyframes"] = reader.Keyframes.Count,
                ["keyframeBytes"] = reader.Keyframes.Sum(k => (long)k.StoredLength),
            };
            output.WriteLine(o.ToJsonString(JsonOutput.Options));
            return ExitCodes.Ok;
        }
        output.WriteLine($"trace:        {path} (format {reader.FormatVersion}, {(reader.Complete ? "complete" : "INCOMPLETE: " + reader.IncompleteReason)})");
        if (damage != null) output.WriteLine($"damage:       {damage}");
        output.WriteLine($"engine:       {h0.EngineBuild}");
        output.WriteLine($"guest:        {h0.GuestImageName} ({h0.GuestKind}, {reader.GuestImage.Length:N0} bytes, sha256 {h0.GuestImageSha256[..16]}…)");
        output.WriteLine($"options:      {string.Join(" ", h0.Options.Select(kv => $"{kv.Key}={kv.Value}"))}");
        output.WriteLine($"instructions: {instructions:N0}");
        if (reader.Summary is { GuestTimeNs: > 0 } d)
            output.WriteLine($"duration:     {d.GuestTimeNs / 1e6:N3} ms of guest time");
        if (reader.Summary is { } s) output.WriteLine($"exit:         {s.Exit} ({s.Reason})");
        output.WriteLine($"events:       {stats.EventCount:N0} in {stats.ChunkCount} chunks");
        foreach (var kv in byKind) output.WriteLine($"  {kv.Key,-14}{kv.Value,10:N0}");
        if (byHypercall.Count > 0)
        {
            output.WriteLine("hypercalls:");
            foreach (var kv in byHypercall.OrderByDescending(kv => kv.Value)) output.WriteLine($"  {kv.Key,-30}{kv.Value,10:N0}");
        }
        if (reader.Keyframes.Count > 0)
            output.WriteLine($"keyframes:    {reader.Keyframes.Count} (instructions {reader.Keyframes[0].Icount:N0} to {reader.Keyframes[^1].Icount:N0}), {reader.Keyframes.Sum(k => (long)k.StoredLength):N0} bytes stored");
        output.WriteLine($"size:         {fileBytes:N0} bytes on disk; events {stats.CompressedBytes:N0} stored / {stats.UncompressedBytes:N0} raw (ratio {ratio:F2})");
        return ExitCodes.Ok;
    }
}
