using System.Text.Json;
using System.Text.RegularExpressions;

namespace Replayvisor.Cli.Tests;

/// <summary>
/// Checks a JSON document against the schemas in docs/schemas, for the keywords they use: type,
/// enum, required, properties, additionalProperties, items, minimum, maximum, pattern, anyOf and
/// local $ref. An unknown keyword fails, so a schema never says more than is checked.
/// </summary>
public static class JsonSchemaCheck
{
    private static readonly HashSet<string> Known =
        ["$schema", "title", "description", "type", "enum", "required", "properties", "additionalProperties", "items", "minItems", "maxItems", "minimum", "maximum", "pattern", "anyOf", "$ref", "$defs"];

    public static JsonElement Load(string name) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(Cli.RepoRoot, "docs", "schemas", name))).RootElement;

    /// <summary>Every way the document breaks the schema, as "path: problem" lines.</summary>
    public static List<string> Problems(JsonElement schema, JsonElement doc)
    {
        var problems = new List<string>();
        Check(schema, schema, doc, "$", problems);
        return problems;
    }

    public static void AssertValid(string schemaName, string json)
    {
        var problems = Problems(Load(schemaName), JsonDocument.Parse(json).RootElement);
        Assert.True(problems.Count == 0, $"{schemaName}:\n{string.Join("\n", problems)}\n{json}");
    }

    private static void Check(JsonElement root, JsonElement s, JsonElement v, string at, List<string> problems)
    {
        foreach (var p in s.EnumerateObject())
            if (!Known.Contains(p.Name)) problems.Add($"{at}: schema keyword '{p.Name}' is not checked");
        if (s.TryGetProperty("$ref", out var r))
        {
            string name = r.GetString()!.Replace("#/$defs/", "");
            Check(root, root.GetProperty("$defs").GetProperty(name), v, at, problems);
        }
        if (s.TryGetProperty("anyOf", out var any))
        {
            bool one = any.EnumerateArray().Any(alt => { var p = new List<string>(); Check(root, alt, v, at, p); return p.Count == 0; });
            if (!one) problems.Add($"{at}: matches none of anyOf");
        }
        if (s.TryGetProperty("type", out var t))
        {
            var types = t.ValueKind == JsonValueKind.Array ? t.EnumerateArray().Select(x => x.GetString()!).ToList() : [t.GetString()!];
            if (!types.Any(ty => Is(ty, v))) { problems.Add($"{at}: {v.ValueKind} is not {string.Join("|", types)}"); return; }
        }
        if (s.TryGetProperty("enum", out var e) && !e.EnumerateArray().Any(x => x.ToString() == v.ToString() && x.ValueKind == v.ValueKind))
            problems.Add($"{at}: '{v}' is not one of {e}");
        if (v.ValueKind == JsonValueKind.Number)
        {
            if (s.TryGetProperty("minimum", out var min) && v.GetDouble() < min.GetDouble()) problems.Add($"{at}: {v} < {min}");
            if (s.TryGetProperty("maximum", out var max) && v.GetDouble() > max.GetDouble()) problems.Add($"{at}: {v} > {max}");
        }
        if (v.ValueKind == JsonValueKind.String && s.TryGetProperty("pattern", out var pat) && !Regex.IsMatch(v.GetString()!, pat.GetString()!))
            problems.Add($"{at}: '{v}' does not match {pat}");
        if (v.ValueKind == JsonValueKind.Object)
        {
            if (s.TryGetProperty("required", out var req))
                foreach (var name in req.EnumerateArray())
                    if (!v.TryGetProperty(name.GetString()!, out _)) problems.Add($"{at}: missing '{name}'");
            s.TryGetProperty("properties", out var props);
            foreach (var p in v.EnumerateObject())
            {
                if (props.ValueKind == JsonValueKind.Object && props.TryGetProperty(p.Name, out var ps)) Check(root, ps, p.Value, $"{at}.{p.Name}", problems);
                else if (s.TryGetProperty("additionalProperties", out var ap))
                {
                    if (ap.ValueKind == JsonValueKind.False) problems.Add($"{at}: '{p.Name}' is not in the schema");
                    else if (ap.ValueKind == JsonValueKind.Object) Check(root, ap, p.Value, $"{at}.{p.Name}", problems);
                }
            }
        }
        if (v.ValueKind == JsonValueKind.Array)
        {
            if (s.TryGetProperty("minItems", out var minItems) && v.GetArrayLength() < minItems.GetInt32()) problems.Add($"{at}: fewer than {minItems} items");
            if (s.TryGetProperty("maxItems", out var maxItems) && v.GetArrayLength() > maxItems.GetInt32()) problems.Add($"{at}: more than {maxItems} items");
        }
        if (v.ValueKind == JsonValueKind.Array && s.TryGetProperty("items", out var items))
        {
            int i = 0;
            foreach (var item in v.EnumerateArray()) Check(root, items, item, $"{at}[{i++}]", problems);
        }
    }

    private static bool Is(string type, JsonElement v) => type switch
    {
        "object" => v.ValueKind == JsonValueKind.Object,
        "array" => v.ValueKind == JsonValueKind.Array,
        "string" => v.ValueKind == JsonValueKind.String,
        "boolean" => v.ValueKind is JsonValueKind.True or JsonValueKind.False,
        "null" => v.ValueKind == JsonValueKind.Null,
        "number" => v.ValueKind == JsonValueKind.Number,
        "integer" => v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out _) || v.ValueKind == JsonValueKind.Number && v.TryGetUInt64(out _),
        _ => throw new InvalidOperationException($"unknown schema type {type}"),
    };
}
