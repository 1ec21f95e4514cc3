namespace Replayvisor.Engine.Trace;

/// <summary>What is wrong with a trace file.</summary>
public enum TraceError
{
    /// <summary>The stream is empty.</summary>
    Empty,
    /// <summary>The stream does not start with the .rvt magic.</summary>
    NotATrace,
    /// <summary>The trace was written by a newer format version than this reader knows.</summary>
    NewerFormat,
    /// <summary>The stream ends before the header and guest image are complete.</summary>
    Truncated,
    /// <summary>The header chunk is damaged or does not decode.</summary>
    BadHeader,
    /// <summary>The stored guest image does not match the header's hash.</summary>
    ImageMismatch,
    /// <summary>A chunk's checksum, kind, lengths or contents are wrong.</summary>
    DamagedChunk,
}

/// <summary>
/// A trace that cannot be read. <see cref="Exception.Message"/> is one line and names the byte
/// offset (from the start of the trace) where it applies.
/// </summary>
public sealed class TraceFormatException : Exception
{
    /// <summary>A trace error of kind <paramref name="error"/> at <paramref name="offset"/> (when known).</summary>
    public TraceFormatException(TraceError error, long? offset, string message, Exception? inner = null)
        : base(offset is { } at ? $"{OneLine(message)} (at byte offset {at})" : OneLine(message), inner)
    {
        Error = error;
        Offset = offset;
        Reason = OneLine(message);
    }

    /// <summary>
    /// The message as one printable line: text taken from a damaged file (a header string, a decoder's
    /// message) may hold newlines or control characters; they are escaped, and a very long text is cut.
    /// </summary>
    internal static string OneLine(string message)
    {
        const int maxChars = 400;
        var needsWork = message.Length > maxChars;
        foreach (var c in message)
            needsWork |= char.IsControl(c) || char.IsSurrogate(c);
        if (!needsWork)
            return message;
        var sb = new System.Text.StringBuilder(Math.Min(message.Length, maxChars) + 8);
        foreach (var c in message)
        {
            if (sb.Length >= maxChars)
            {
                sb.Append("...");
                break;
            }
            if (c == '\n') sb.Append("\\n");
            else if (c == '\r') sb.Append("\\r");
            else if (char.IsControl(c) || char.IsSurrogate(c)) sb.Append("\\x").Append(((int)c).ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
            else sb.Append(c);
        }
        return sb.ToString();
    }

    /// <summary>What kind of problem it is.</summary>
    public TraceError Error { get; }
    /// <summary>The message without the offset.</summary>
    public string Reason { get; }
    /// <summary>The byte offset of the damaged structure, when there is one.</summary>
    public long? Offset { get; }
    /// <summary>For <see cref="TraceError.NewerFormat"/>: the version found in the file.</summary>
    public int? FormatVersion { get; init; }
}
