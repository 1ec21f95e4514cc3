namespace Replayvisor.Engine.Xen;

/// <summary>Receives guest console output (console_io writes and the PV console ring), byte for byte.</summary>
public interface IConsoleSink
{
    void Write(ReadOnlySpan<byte> bytes);
}

/// <summary>A sink that keeps everything in memory (tests, the machine's default).</summary>
public sealed class BufferConsoleSink : IConsoleSink
{
    private readonly List<byte> _bytes = [];

    public void Write(ReadOnlySpan<byte> bytes)
    {
        foreach (byte b in bytes) _bytes.Add(b);
    }

    public byte[] ToArray() => [.. _bytes];

    public string Text => System.Text.Encoding.ASCII.GetString([.. _bytes]);
}

/// <summary>Guest console output to a stream, flushed at every write so it appears as the guest prints.</summary>
public sealed class StreamConsoleSink(Stream output) : IConsoleSink
{
    public void Write(ReadOnlySpan<byte> bytes)
    {
        output.Write(bytes);
        output.Flush();
    }
}
