using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using MessagePack;
using Replayvisor.Engine.Trace.Compact;

namespace Replayvisor.Engine.Trace;

/// <summary>When the writer closes an event chunk.</summary>
public sealed record TraceWriterOptions
{
    /// <summary>Close a chunk once it holds this many events.</summary>
    public int MaxChunkEvents { get; init; } = 4096;
    /// <summary>Close a chunk once its encoded (uncompressed) events reach this many bytes.</summary>
    public int MaxChunkBytes { get; init; } = 256 * 1024;
    /// <summary>The trace may hold keyframe chunks (<see cref="TraceWriter.AppendKeyframe"/>): it is written in format 4 instead of 3.</summary>
    public bool Keyframes { get; init; }
}

/// <summary>
/// Writes a .rvt trace to a stream: preamble, header and guest image at construction, event
/// chunks as events are appended, index and footer at <see cref="Complete"/>. Disposing without
/// completing writes the pending chunk and leaves a trace readable up to it (Complete = false).
/// Once a write to the stream has failed, nothing more is written (the error is thrown once;
/// later calls throw InvalidOperationException, and Dispose only closes the stream).
/// The same header, image and events always produce the same bytes.
/// </summary>
public sealed class TraceWriter : IDisposable
{
    private readonly Stream _stream;
    private readonly bool _leaveOpen;
    private readonly TraceWriterOptions _options;
    private readonly CompactEventEncoder _pending = new();
    /// <summary>Where each chunk is encoded before it is written (reused: a chunk's buffers are allocated once per trace, not per chunk).</summary>
    private byte[] _chunk = [];
    private readonly List<TraceChunkInfo> _chunks = [];
    private readonly List<TraceKeyframeInfo> _keyframes = [];
    private long _position;
    private uint _chain;
    private int _pendingCount;
    private ulong _firstIcount, _lastIcount;
    private bool _completed, _disposed, _broken;

    /// <summary>Starts a trace on <paramref name="stream"/>: writes the preamble, the header and the guest image.</summary>
    public TraceWriter(Stream stream, TraceHeader header, ReadOnlySpan<byte> guestImage,
        TraceWriterOptions? options = null, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(header);
        if (!stream.CanWrite)
            throw new ArgumentException("The trace stream must be writable", nameof(stream));
        if (header.GuestImageSha256 != TraceHeader.HashImage(guestImage))
            throw new ArgumentException("The header's guest image hash does not match the guest image", nameof(header));
        _stream = stream;
        _leaveOpen = leaveOpen;
        _options = options ?? new TraceWriterOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.MaxChunkEvents, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.MaxChunkBytes, 1, nameof(options));

        Span<byte> preamble = stackalloc byte[TraceLayout.PreambleSize];
        TraceLayout.Magic.CopyTo(preamble);
        FormatVersion = _options.Keyframes ? TraceLayout.FormatVersion : TraceLayout.BaseFormatVersion;
        BinaryPrimitives.WriteUInt16LittleEndian(preamble[8..], (ushort)FormatVersion);
        WriteBytes(preamble);
        _chain = Crc32C.Compute(preamble);
        WriteChunk(ChunkKind.Header, MessagePackSerializer.Serialize(header, TraceMessagePack.Options));
        WriteChunk(ChunkKind.GuestImage, guestImage);
    }

    /// <summary>The format version written: 3 when the options allow keyframes, otherwise 2.</summary>
    public int FormatVersion { get; }
    /// <summary>Events appended so far.</summary>
    public long EventCount { get; private set; }
    /// <summary>Events appended but not yet written as a chunk.</summary>
    public int PendingEvents => _pendingCount;
    /// <summary>Event chunks written so far.</summary>
    public int ChunkCount => _chunks.Count;

    /// <summary>Adds an event. Events must come in non-decreasing icount order.</summary>
    public void Append(TraceEvent traceEvent)
    {
        ArgumentNullException.ThrowIfNull(traceEvent);
        ThrowIfClosed();
        AppendToPending(traceEvent);
        CloseChunkIfFull();
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void CloseChunkIfFull()
    {
        if (_pendingCount >= _options.MaxChunkEvents || _pending.Length >= _options.MaxChunkBytes)
            WritePendingChunk();
    }

    /// <summary>
    /// Adds <c>new HypercallEvent(icount, number, args, result, default, default, outputDigest, site) { Vcpu = vcpu }</c>
    /// without the event object (the recorder's most frequent event): the trace's bytes are the
    /// same as with <see cref="Append"/> of that event. At most 15 arguments.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void AppendHypercall(ulong icount, int number, ReadOnlySpan<uint> args, long result, ulong outputDigest, uint site, int vcpu)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(args.Length, 15, nameof(args));
        ThrowIfClosed();
        CheckOrder(icount);
        _pending.AddHypercall(icount, number, args, result, outputDigest, site, vcpu);
        Counted(icount);
        CloseChunkIfFull();
    }

    /// <summary>Adds <c>new UpcallEvent(icount, vcpu, ports) { Eip = eip, Handler = handler }</c> without the event object (as <see cref="AppendHypercall"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void AppendUpcall(ulong icount, int vcpu, ReadOnlySpan<uint> ports, uint eip, uint handler)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(vcpu);
        ThrowIfClosed();
        CheckOrder(icount);
        _pending.AddUpcall(icount, vcpu, ports, eip, handler);
        Counted(icount);
        CloseChunkIfFull();
    }

    /// <summary>
    /// Writes the pending events as a chunk, then <paramref name="events"/> as one chunk of their
    /// own however many there are (copying a trace chunk for chunk, as `replayvisor index` does).
    /// </summary>
    public void AppendChunk(IReadOnlyList<TraceEvent> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        ThrowIfClosed();
        WritePendingChunk();
        foreach (var e in events) AppendToPending(e);
        WritePendingChunk();
    }

    /// <summary>
    /// Writes a keyframe chunk (after the pending events): <paramref name="payload"/>, a whole
    /// replay state at <paramref name="icount"/> in the encoding named by <paramref name="layout"/>,
    /// and the hash of its machine state. Keyframes must come in icount order; the writer must have
    /// been created with <see cref="TraceWriterOptions.Keyframes"/>.
    /// </summary>
    public void AppendKeyframe(ulong icount, ReadOnlySpan<byte> stateHash, string layout, ReadOnlySpan<byte> payload)
    {
        ArgumentNullException.ThrowIfNull(layout);
        ThrowIfClosed();
        if (!_options.Keyframes) throw new InvalidOperationException("This trace was started without TraceWriterOptions.Keyframes");
        if (_keyframes.Count > 0 && icount < _keyframes[^1].Icount)
            throw new ArgumentException($"Keyframe at icount {icount} appended after icount {_keyframes[^1].Icount}", nameof(icount));
        WritePendingChunk();
        var offset = _position;
        var header = WriteChunk(ChunkKind.Keyframe, payload);
        _keyframes.Add(new TraceKeyframeInfo(offset, header.StoredLength, payload.Length, icount, stateHash.ToArray(), layout));
    }

    /// <summary>Keyframe chunks written so far.</summary>
    public int KeyframeCount => _keyframes.Count;

    /// <summary>Writes the pending events as a chunk and flushes the stream.</summary>
    public void Flush()
    {
        ThrowIfClosed();
        WritePendingChunk();
        FlushStream();
    }

    /// <summary>Writes the pending chunk, the index (with <paramref name="summary"/>) and the footer.</summary>
    public void Complete(TraceSummary summary)
    {
        ArgumentNullException.ThrowIfNull(summary);
        ThrowIfClosed();
        WritePendingChunk();
        var indexOffset = _position;
        // Without keyframes the index is the two-key payload of format 2, byte for byte.
        var index = _keyframes.Count == 0
            ? MessagePackSerializer.Serialize(new TraceIndexPayload(_chunks.ToArray(), summary), TraceMessagePack.Options)
            : MessagePackSerializer.Serialize(new KeyframedIndexPayload(_chunks.ToArray(), summary, _keyframes.ToArray()), TraceMessagePack.Options);
        WriteChunk(ChunkKind.Index, index);
        Span<byte> footer = stackalloc byte[TraceLayout.FooterSize];
        BinaryPrimitives.WriteInt64LittleEndian(footer, indexOffset);
        TraceLayout.EndMagic.CopyTo(footer[8..]);
        WriteBytes(footer);
        FlushStream();
        _completed = true;
    }

    /// <summary>Writes the pending events and closes the stream unless leaveOpen; without <see cref="Complete"/> the trace stays incomplete (readable, without a summary).</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        try
        {
            // After a failed write nothing more is written: the stream ends with whole chunks.
            if (!_completed && !_broken)
            {
                WritePendingChunk();
                _stream.Flush();
            }
        }
        finally
        {
            _disposed = true;
            if (!_leaveOpen)
                _stream.Dispose();
        }
    }

    private void AppendToPending(TraceEvent traceEvent)
    {
        CheckOrder(traceEvent.Icount);
        _pending.Add(traceEvent);
        Counted(traceEvent.Icount);
    }

    private void CheckOrder(ulong icount)
    {
        if (EventCount > 0 && icount < _lastIcount)
            throw new ArgumentException(
                $"Event at icount {icount} appended after icount {_lastIcount}; events must be in icount order",
                "traceEvent");
    }

    /// <summary>Counts the event just added at <paramref name="icount"/>.</summary>
    private void Counted(ulong icount)
    {
        if (_pendingCount == 0)
            _firstIcount = icount;
        _lastIcount = icount;
        _pendingCount++;
        EventCount++;
    }

    private void WritePendingChunk()
    {
        if (_pendingCount == 0)
            return;
        var raw = _pending.FinishInPlace();
        var offset = _position;
        var header = WriteChunk(ChunkKind.CompactEvents, raw);
        _chunks.Add(new TraceChunkInfo(offset, header.StoredLength, raw.Length, _firstIcount, _lastIcount, _pendingCount));
        _pendingCount = 0;
    }

    /// <summary>Encodes and writes one chunk, continuing the header chain.</summary>
    private ChunkHeader WriteChunk(ChunkKind kind, ReadOnlySpan<byte> raw)
    {
        int length = ChunkCodec.Encode(kind, raw, _chain, ref _chunk, out var header);
        WriteBytes(_chunk.AsSpan(0, length));
        _chain = header.Chain;
        return header;
    }

    private void WriteBytes(ReadOnlySpan<byte> bytes)
    {
        try { _stream.Write(bytes); }
        catch { _broken = true; throw; }
        _position += bytes.Length;
    }

    private void FlushStream()
    {
        try { _stream.Flush(); }
        catch { _broken = true; throw; }
    }

    private void ThrowIfClosed()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_completed)
            throw new InvalidOperationException("The trace is already complete");
        if (_broken)
            throw new InvalidOperationException("An earlier write to the trace stream failed");
    }
}
