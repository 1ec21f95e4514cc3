using System.Collections.Concurrent;
using System.Text;

namespace Replayvisor.Cli.Gdb;

/// <summary>
/// The GDB Remote Serial Protocol's framing over a byte stream (docs/gdbserver.md): packets
/// "$data#cc" with a two-digit modulo-256 checksum, '+'/'-' acknowledgements until
/// QStartNoAckMode, and a bare 0x03 byte for an interrupt. A reader thread takes packets off the
/// stream so an interrupt is seen while the target runs.
/// </summary>
public sealed class RspConnection : IDisposable
{
    private readonly Stream _stream;
    private readonly BlockingCollection<string?> _packets = new();
    private readonly Thread _reader;
    private readonly Action _onInterrupt;

    public RspConnection(Stream stream, Action onInterrupt)
    {
        _stream = stream;
        _onInterrupt = onInterrupt;
        _reader = new Thread(ReadLoop) { IsBackground = true, Name = "gdb-rsp-reader" };
        _reader.Start();
    }

    /// <summary>Called with each packet received, on the reader thread (`gdbserver --log`).</summary>
    public Action<string>? OnPacket { get; set; }

    /// <summary>Stop acknowledging packets (after QStartNoAckMode's OK).</summary>
    public bool NoAck { get; set; }

    /// <summary>The next packet's data, or null when the connection closed.</summary>
    public string? Receive() => _packets.Take();

    public void Send(string data)
    {
        var bytes = Encoding.Latin1.GetBytes(Frame(data));
        lock (_stream)
        {
            _stream.Write(bytes);
            _stream.Flush();
        }
    }

    /// <summary>"$data#cc" with '#', '$', '}' and '*' escaped as '}' followed by the byte xor 0x20.</summary>
    public static string Frame(string data)
    {
        var body = new StringBuilder(data.Length + 4);
        foreach (char ch in data)
        {
            if (ch is '#' or '$' or '}' or '*') body.Append('}').Append((char)(ch ^ 0x20));
            else body.Append(ch);
        }
        int sum = 0;
        foreach (char ch in body.ToString()) sum = (sum + (byte)ch) & 0xFF;
        return $"${body}#{sum:x2}";
    }

    private void ReadLoop()
    {
        try
        {
            var packet = new StringBuilder();
            while (true)
            {
                int b = _stream.ReadByte();
                if (b < 0) break;
                if (b == 0x03) { _onInterrupt(); _packets.Add("\u0003"); continue; }
                if (b != '$') continue; // acks and noise between packets
                packet.Clear();
                int sum = 0;
                while ((b = _stream.ReadByte()) >= 0 && b != '#')
                {
                    sum = (sum + b) & 0xFF;
                    if (b == '}')
                    {
                        int next = _stream.ReadByte();
                        if (next < 0) break;
                        sum = (sum + next) & 0xFF;
                        packet.Append((char)(next ^ 0x20));
                    }
                    else packet.Append((char)b);
                }
                if (b < 0) break;
                int hi = _stream.ReadByte(), lo = _stream.ReadByte();
                if (lo < 0) break;
                bool ok = int.TryParse($"{(char)hi}{(char)lo}", System.Globalization.NumberStyles.HexNumber, null, out int cs) && cs == sum;
                if (!NoAck) lock (_stream) { _stream.WriteByte((byte)(ok ? '+' : '-')); _stream.Flush(); }
                if (!ok) continue;
                OnPacket?.Invoke(packet.ToString());
                _packets.Add(packet.ToString());
            }
        }
        catch (IOException) { }
        catch (ObjectDisposedException) { }
        // gdb went away: end whatever runs now instead of finishing it for nobody.
        _onInterrupt();
        try { _packets.Add(null); }
        catch (ObjectDisposedException) { } // the connection was disposed first (the server ends): nobody waits for packets
    }

    public void Dispose()
    {
        _stream.Dispose();
        _packets.Dispose();
    }
}
