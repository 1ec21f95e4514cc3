using System.Text;
using System.Text.Json.Nodes;
using Replayvisor.Engine.Machine;

namespace Replayvisor.Cli.Commands;

/// <summary>
/// What `run --stats` and `record --stats` report: as text on stderr, or with --json as one JSON
/// document on stdout (docs/schemas/run.schema.json, described in docs/json-output.md).
/// </summary>
public sealed record RunReport(
    string Command, string Kernel, string? Trace, MachineExit Exit, int ExitCode, TimeSpan Elapsed,
    IReadOnlyDictionary<string, long> Hypercalls, IReadOnlyDictionary<int, long> Exceptions, long TraceEvents, byte[]? Console)
{
    private double Mips => Exit.Icount / Math.Max(Elapsed.TotalSeconds, 1e-9) / 1e6;

    public void WriteText(TextWriter err)
    {
        err.WriteLine($"instructions retired: {Exit.Icount:N0}");
        err.WriteLine($"wall time:            {Elapsed.TotalMilliseconds:N1} ms ({Mips:F1} MIPS)");
        err.WriteLine("hypercalls:");
        foreach (var kv in Hypercalls.OrderByDescending(kv => kv.Value)) err.WriteLine($"  {kv.Key,-30}{kv.Value,12:N0}");
        err.WriteLine("exceptions:");
        foreach (var kv in Exceptions) err.WriteLine($"  vector {kv.Key,-3} {VectorName(kv.Key),-22}{kv.Value,12:N0}");
        if (TraceEvents > 0) err.WriteLine($"trace events:         {TraceEvents:N0}");
    }

    public JsonObject ToJson() => new()
    {
        ["command"] = Command,
        ["kernel"] = Kernel,
        ["trace"] = Trace,
        ["exit"] = new JsonObject
        {
            ["kind"] = Exit.Kind.ToString(),
            ["code"] = ExitCode,
            ["icount"] = Exit.Icount,
            ["detail"] = Exit.Detail,
        },
        ["instructions"] = Exit.Icount,
        ["wallMs"] = Math.Round(Elapsed.TotalMilliseconds, 3),
        ["mips"] = Math.Round(Mips, 3),
        ["hypercalls"] = new JsonObject(Hypercalls.OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
        ["exceptions"] = new JsonArray(Exceptions.OrderBy(kv => kv.Key)
            .Select(kv => (JsonNode)new JsonObject { ["vector"] = kv.Key, ["name"] = VectorName(kv.Key), ["count"] = kv.Value }).ToArray()),
        ["traceEvents"] = Trace is null ? null : TraceEvents,
        ["console"] = Console is null ? null : Encoding.Latin1.GetString(Console),
    };

    private static string VectorName(int v) => v switch
    {
        0 => "#DE", 1 => "#DB", 3 => "#BP", 4 => "#OF", 5 => "#BR", 6 => "#UD", 7 => "#NM", 8 => "#DF", 10 => "#TS",
        11 => "#NP", 12 => "#SS", 13 => "#GP", 14 => "#PF", 16 => "#MF", 17 => "#AC", 19 => "#XM", 0x80 => "int 0x80",
        _ => "",
    };
}
