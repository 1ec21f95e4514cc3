using System.Text.Encodings.Web;
using System.Text.Json;

namespace Replayvisor.Cli;

/// <summary>How every --json document is written (docs/json-output.md): indented, UTF-8 text unescaped.</summary>
public static class JsonOutput
{
    public static readonly JsonSerializerOptions Options = new() { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
}
