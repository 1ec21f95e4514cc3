using System.Buffers;
using System.Runtime.CompilerServices;
using MessagePack;

namespace Replayvisor.Engine.Trace.Compact;

/// <summary>
/// Builds the payload of one compact events chunk, event by event (docs/trace-format.md
/// "Compact events chunks"). Differences are taken from earlier events of the same chunk only,
/// so every chunk decodes on its own. Hypercalls that carry guest-memory bytes (record
/// --hypercall-data) and the rare kinds (console, failsafe, shutdown) are stored whole as MessagePack.
/// </summary>
internal sealed class CompactEventEncoder
{
    private readonly ColumnBuffer[] _columns = new ColumnBuffer[CompactCodes.ColumnCount];
    private readonly HypercallHistory _history = new();
    private readonly ulong[] _lastTime = new ulong[256];
    /// <summary>Where <see cref="FinishInPlace"/> puts the payload (grown as needed, reused from chunk to chunk).</summary>
    private byte[] _payload = [];
    private readonly ArrayBufferWriter<byte> _escape = new();
    private ulong _lastIcount;
    private uint _lastUpcallEip, _lastUpcallHandler, _lastExceptionHandler;
    private bool _anyUpcallSite, _anyExceptionHandler;

    public CompactEventEncoder()
    {
        for (int i = 0; i < _columns.Length; i++) _columns[i] = new ColumnBuffer();
    }

    /// <summary>Events added since the last <see cref="Finish"/>.</summary>
    public int Count { get; private set; }

    /// <summary>The size of the columns so far (the payload is a few bytes more).</summary>
    public int Length
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        get
        {
            int n = 0;
            foreach (var c in _columns) n += c.Length;
            return n;
        }
    }

    private ColumnBuffer this[CompactColumn c]
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _columns[(int)c];
    }

    /// <summary>
    /// Adds <c>new HypercallEvent(icount, number, args, result, default, default, digest, site) { Vcpu = vcpu }</c>
    /// (at most 15 arguments) without the event object: the same bytes as <see cref="Add"/> of that event.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void AddHypercall(ulong icount, int number, ReadOnlySpan<uint> args, long result, ulong digest, uint site, int vcpu)
    {
        AddIcount(icount);
        this[CompactColumn.Kind].Byte(CompactCodes.Hypercall);
        AddHypercall(number, args, result, [], digest, site);
        this[CompactColumn.Vcpu].Signed(vcpu);
    }

    /// <summary>Adds <c>new UpcallEvent(icount, vcpu, ports) { Eip = eip, Handler = handler }</c> (vcpu ≥ 0) without the event object.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void AddUpcall(ulong icount, int vcpu, ReadOnlySpan<uint> ports, uint eip, uint handler)
    {
        AddIcount(icount);
        this[CompactColumn.Kind].Byte(CompactCodes.Upcall);
        var up = this[CompactColumn.Upcall];
        up.Varint((ulong)vcpu);
        up.Varint((ulong)ports.Length);
        foreach (uint p in ports) up.Varint(p);
        AddUpcallSite(eip, handler);
    }

    private void AddIcount(ulong icount)
    {
        this[CompactColumn.Icount].Varint(icount - _lastIcount);
        _lastIcount = icount;
        Count++;
    }

    /// <summary>Adds an event (icounts never fall: the writer checks).</summary>
    public void Add(TraceEvent e)
    {
        switch (e)
        {
            case HypercallEvent h when h.Memory.IsEmpty && h.Args.Count <= CompactCodes.ArgCountMask && !h.Multicall.AsSpan().Contains(null!):
                AddIcount(e.Icount);
                this[CompactColumn.Kind].Byte(CompactCodes.Hypercall);
                AddHypercall(h.Number, h.Args.AsSpan(), h.Result, h.Multicall.AsSpan(), h.OutputDigest, h.Site);
                this[CompactColumn.Vcpu].Signed(h.Vcpu);
                return;
            case UpcallEvent u when u.Vcpu >= 0:
                AddUpcall(u.Icount, u.Vcpu, u.Ports.AsSpan(), u.Eip, u.Handler);
                return;
        }
        AddIcount(e.Icount);
        var kind = this[CompactColumn.Kind];
        switch (e)
        {
            case TimeEvent t when (uint)t.Kind <= byte.MaxValue:
                kind.Byte(CompactCodes.Time);
                var time = this[CompactColumn.Time];
                time.Byte((byte)t.Kind);
                time.Signed((long)(t.Value - _lastTime[(int)t.Kind]));
                _lastTime[(int)t.Kind] = t.Value;
                this[CompactColumn.Vcpu].Signed(t.Vcpu);
                break;
            case AsyncEvent a when (uint)a.Kind <= byte.MaxValue:
                kind.Byte(CompactCodes.Async);
                var async = this[CompactColumn.Async];
                async.Byte((byte)a.Kind);
                async.Varint(a.Port);
                async.Varint(a.Arg);
                this[CompactColumn.Vcpu].Signed(a.Vcpu);
                break;
            case ExceptionEvent x when x.Vector >= 0:
                kind.Byte(CompactCodes.Exception);
                var ex = this[CompactColumn.Exception];
                ex.Varint((ulong)x.Vector);
                ex.Varint(x.ErrorCode);
                ex.Varint(x.Cr2);
                ex.Varint(x.Eip);
                this[CompactColumn.Vcpu].Signed(x.Vcpu);
                this[CompactColumn.ExceptionHandler].Signed((int)(x.Handler - _lastExceptionHandler));
                _lastExceptionHandler = x.Handler;
                _anyExceptionHandler |= x.Handler != 0;
                break;
            case CheckpointEvent c:
                kind.Byte(CompactCodes.Checkpoint);
                var cp = this[CompactColumn.Checkpoint];
                cp.Varint((ulong)c.StateHash.Count);
                cp.Bytes(c.StateHash.AsSpan());
                this[CompactColumn.Vcpu].Signed(c.Vcpu);
                break;
            default:
                kind.Byte(CompactCodes.Escaped);
                _escape.ResetWrittenCount();
                var writer = new MessagePackWriter(_escape);
                MessagePackSerializer.Serialize(ref writer, e, TraceMessagePack.Options);
                writer.Flush();
                var esc = this[CompactColumn.Escaped];
                esc.Varint((ulong)_escape.WrittenCount);
                esc.Bytes(_escape.WrittenSpan);
                break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void AddHypercall(int number, ReadOnlySpan<uint> args, long result, ReadOnlySpan<MulticallEntry> multicall, ulong digest, uint site)
    {
        this[CompactColumn.HypercallNumber].Signed(number);
        byte shape = (byte)args.Length;
        if (digest != 0) shape |= CompactCodes.HasDigest;
        if (!multicall.IsEmpty) shape |= CompactCodes.HasMulticall;
        this[CompactColumn.HypercallShape].Byte(shape);
        var previous = _history.For(number);
        var last = previous.Args;
        var argColumn = this[CompactColumn.HypercallArgs];
        for (int i = 0; i < args.Length; i++)
        {
            argColumn.Signed((int)(args[i] - last[i]));
            last[i] = args[i];
        }
        this[CompactColumn.HypercallResult].Signed(result);
        if (digest != 0) this[CompactColumn.HypercallDigest].U64Le(digest);
        this[CompactColumn.HypercallSite].Signed((int)(site - previous.Site));
        previous.Site = site;
        if (!multicall.IsEmpty)
        {
            var mc = this[CompactColumn.Multicall];
            mc.Varint((ulong)multicall.Length);
            foreach (var entry in multicall)
            {
                mc.Signed(entry.Op);
                mc.Signed(entry.Result);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void AddUpcallSite(uint eip, uint handler)
    {
        var site = this[CompactColumn.UpcallSite];
        site.Signed((int)(eip - _lastUpcallEip));
        site.Signed((int)(handler - _lastUpcallHandler));
        _lastUpcallEip = eip;
        _lastUpcallHandler = handler;
        _anyUpcallSite |= eip != 0 || handler != 0;
    }

    /// <summary>
    /// The payload: varint event count, varint column count, a varint length per column, then the
    /// columns back to back (the upcall sites and exception handler columns only up to the last
    /// one that an event of the chunk needs; one left out or empty means none).
    /// Resets the encoder for the next chunk.
    /// </summary>
    public byte[] Finish() => FinishInPlace().ToArray();

    /// <summary>
    /// <see cref="Finish"/>'s payload in a buffer the encoder keeps for the next chunk (valid until the
    /// next call): a trace writer allocates it once, not once per chunk (docs/record-replay.md "The
    /// trace writer thread").
    /// </summary>
    public ReadOnlySpan<byte> FinishInPlace()
    {
        int columns = _anyExceptionHandler ? (int)CompactColumn.ExceptionHandler + 1
            : _anyUpcallSite ? (int)CompactColumn.UpcallSite + 1
            : CompactCodes.BaseColumnCount;
        var head = new ColumnBuffer();
        head.Varint((ulong)Count);
        head.Varint((ulong)columns);
        int length = 0;
        for (int i = 0; i < columns; i++)
        {
            head.Varint((ulong)_columns[i].Length);
            length += _columns[i].Length;
        }
        if (_payload.Length < head.Length + length) _payload = new byte[head.Length + length];
        var payload = _payload.AsSpan(0, head.Length + length);
        head.Written.CopyTo(payload);
        int at = head.Length;
        for (int i = 0; i < columns; i++)
        {
            _columns[i].Written.CopyTo(payload[at..]);
            at += _columns[i].Length;
        }
        foreach (var c in _columns) c.Clear();
        Count = 0;
        _lastIcount = 0;
        _lastUpcallEip = _lastUpcallHandler = _lastExceptionHandler = 0;
        _anyUpcallSite = _anyExceptionHandler = false;
        _history.Clear();
        Array.Clear(_lastTime);
        return payload;
    }
}
