using Replayvisor.Engine.Memory;
using Replayvisor.Engine.State;
using Replayvisor.Engine.Xen.Xenstore;

namespace Replayvisor.Engine.Xen;

/// <summary>
/// The backends domain 0 would run for a domU, played by the model: xenconsoled on the PV console
/// ring (start_info console.domU) and xenstored on the store ring (<see cref="Xenstored"/>; replies
/// the ring has no room for yet wait here in order). Rings are accessed by machine address
/// (docs/xen-abi.md §4.7). Also holds the console_io read queue (dom0's serial input).
/// </summary>
public sealed class ConsoleBackend : IStateHashable
{
    public const uint BackendStorePort = 1, BackendConsolePort = 2;
    private const int InSize = 1024, OutSize = 2048, InOff = 0, OutOff = 0x400;
    private const int InCons = 0xC00, InProd = 0xC04, OutCons = 0xC08, OutProd = 0xC0C;
    private const int XsReqOff = 0, XsRspOff = 0x400, XsRingSize = 1024;
    private const int XsReqCons = 0x800, XsReqProd = 0x804, XsRspCons = 0x808, XsRspProd = 0x80C;

    private readonly Hypervisor _hv;
    private readonly PhysicalMemory _mem;
    private readonly ulong _console, _store;
    private readonly bool _hasRings;
    private readonly Queue<byte> _ringInput = new();
    private readonly Queue<byte> _consoleIoInput = new();
    private readonly List<byte> _xsIn = []; // request bytes taken off the ring, not yet a whole message
    private readonly Queue<byte> _xsOut = new(); // reply bytes waiting for room in the ring

    internal ConsoleBackend(Hypervisor hv)
    {
        _hv = hv;
        _mem = hv.Domain.Memory;
        _hasRings = !hv.Domain.InitialDomain;
        _console = (ulong)hv.Domain.ConsoleMfn << 12;
        _store = (ulong)hv.Domain.StoreMfn << 12;
        var d = hv.Domain;
        Xenstore = new Xenstored(hv.Domid,
        [
            ("domid", hv.Domid.ToString()),
            ("name", "replayvisor-guest"),
            ("memory/static-max", (d.NrPages * 4).ToString()),
            ("memory/target", (d.NrPages * 4).ToString()),
            ("cpu/0/availability", "online"),
            ("console/ring-ref", d.ConsoleMfn.ToString()),
            ("console/port", Boot.BuiltDomain.ConsoleEvtchn.ToString()),
            ("console/type", "xenconsoled"),
            ("store/ring-ref", d.StoreMfn.ToString()),
            ("store/port", Boot.BuiltDomain.StoreEvtchn.ToString()),
            ("control", ""),
            ("data", ""),
            ("device", ""),
        ]);
    }

    /// <summary>The xenstore daemon answering the domain's store ring.</summary>
    public Xenstored Xenstore { get; }

    /// <summary>The store ring's byte streams held by the daemon: a partly received request, and replies waiting for room (copies).</summary>
    public (byte[] Partial, byte[] Replies) SnapshotXenstoreStreams() => ([.. _xsIn], [.. _xsOut]);

    public void RestoreXenstoreStreams(ReadOnlySpan<byte> partial, ReadOnlySpan<byte> replies)
    {
        _xsIn.Clear();
        _xsIn.AddRange(partial);
        _xsOut.Clear();
        foreach (byte b in replies) _xsOut.Enqueue(b);
    }

    /// <summary>Bytes waiting to enter the PV console ring (it was full).</summary>
    public int PendingRingInput => _ringInput.Count;

    /// <summary>The bytes waiting for the PV console ring, oldest first (a copy).</summary>
    public byte[] SnapshotRingInput() => [.. _ringInput];

    /// <summary>The console_io read queue (dom0), oldest first (a copy).</summary>
    public byte[] SnapshotConsoleIoInput() => [.. _consoleIoInput];

    /// <summary>Replaces both input queues (the rings themselves are guest memory).</summary>
    public void RestoreInput(ReadOnlySpan<byte> ringInput, ReadOnlySpan<byte> consoleIoInput)
    {
        _ringInput.Clear();
        foreach (byte b in ringInput) _ringInput.Enqueue(b);
        _consoleIoInput.Clear();
        foreach (byte b in consoleIoInput) _consoleIoInput.Enqueue(b);
    }

    /// <summary>The two input queues in FIFO order (the ring indexes and contents are in RAM).</summary>
    public void WriteState(CanonicalWriter w)
    {
        ArgumentNullException.ThrowIfNull(w);
        w.Tag("console");
        w.Bool(_hasRings);
        w.Bytes(SnapshotRingInput());
        w.Bytes(SnapshotConsoleIoInput());
        Xenstore.WriteState(w);
        if (_xsIn.Count == 0 && _xsOut.Count == 0) return; // written only when non-empty: older states keep their hashes
        w.Tag("xenstore-streams");
        w.Bytes([.. _xsIn]);
        w.Bytes([.. _xsOut]);
    }

    internal void PushInput(ReadOnlySpan<byte> bytes)
    {
        if (_hasRings)
        {
            foreach (byte b in bytes) _ringInput.Enqueue(b);
            FillInput();
        }
        else
        {
            foreach (byte b in bytes) _consoleIoInput.Enqueue(b);
            _hv.Events.RaiseVirq(0, Hypervisor.VirqConsole);
        }
    }

    /// <summary>CONSOLEIO_read: copies up to <paramref name="into"/>.Length queued bytes without consuming them.</summary>
    internal int PeekConsoleIo(Span<byte> into)
    {
        int n = 0;
        foreach (byte b in _consoleIoInput)
        {
            if (n == into.Length) break;
            into[n++] = b;
        }
        return n;
    }

    internal void ConsumeConsoleIo(int n)
    {
        for (int i = 0; i < n; i++) _consoleIoInput.Dequeue();
    }

    /// <summary>The guest sent on its end of a backend port.</summary>
    internal void OnGuestNotify(uint port)
    {
        if (!_hasRings) return;
        if (port == Boot.BuiltDomain.ConsoleEvtchn) { DrainOutput(); FillInput(); }
        else if (port == Boot.BuiltDomain.StoreEvtchn) AnswerXenstore();
    }

    /// <summary>Polled when the guest blocks, as xenconsoled would notice output eventually.</summary>
    internal void Poll()
    {
        if (!_hasRings) return;
        DrainOutput();
        FillInput();
    }

    private void DrainOutput()
    {
        uint cons = _mem.Read32(_console + OutCons), prod = _mem.Read32(_console + OutProd);
        uint avail = prod - cons;
        if (avail == 0) return;
        if (avail > OutSize) avail = OutSize; // a confused guest: take one ring's worth
        var buf = new byte[avail];
        for (uint i = 0; i < avail; i++) buf[i] = _mem.Read8(_console + OutOff + ((cons + i) & (OutSize - 1)));
        _mem.Write32(_console + OutCons, cons + avail);
        _hv.EmitConsole(buf, ConsoleSource.Ring);
        _hv.Events.NotifyFromBackend(Boot.BuiltDomain.ConsoleEvtchn);
    }

    private void FillInput()
    {
        if (_ringInput.Count == 0) return;
        uint cons = _mem.Read32(_console + InCons), prod = _mem.Read32(_console + InProd);
        bool wrote = false;
        while (_ringInput.Count > 0 && prod - cons < InSize)
        {
            _mem.Write8(_console + InOff + (prod & (InSize - 1)), _ringInput.Dequeue());
            prod++;
            wrote = true;
        }
        if (!wrote) return;
        _mem.Write32(_console + InProd, prod);
        _hv.Events.NotifyFromBackend(Boot.BuiltDomain.ConsoleEvtchn);
    }

    /// <summary>
    /// The store ring is a byte stream each way (public/io/xs_wire.h): takes every byte the guest
    /// wrote, answers each whole message (a request longer than the ring arrives in pieces), and
    /// writes as many reply bytes as the ring has room for; the rest waits for the guest's next notify.
    /// </summary>
    private void AnswerXenstore()
    {
        uint cons = _mem.Read32(_store + XsReqCons), prod = _mem.Read32(_store + XsReqProd);
        if (prod - cons <= XsRingSize)
        {
            for (; cons != prod; cons++) _xsIn.Add(_mem.Read8(_store + XsReqOff + (cons & (XsRingSize - 1))));
            _mem.Write32(_store + XsReqCons, cons);
        }
        while (_xsIn.Count >= XsWire.HeaderSize)
        {
            var h = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_xsIn);
            uint type = U32(h, 0), reqId = U32(h, 4), txId = U32(h, 8), len = U32(h, 12);
            if (len > XsWire.PayloadMax) len = 0; // xenstored drops such a connection; here the header alone is answered EINVAL
            if (_xsIn.Count < XsWire.HeaderSize + len) break;
            byte[] payload = h.Slice(XsWire.HeaderSize, (int)len).ToArray();
            _xsIn.RemoveRange(0, XsWire.HeaderSize + (int)len);
            foreach (var m in Xenstore.Handle(new XsMessage(type, reqId, txId, payload))) Serialize(m);
        }
        uint rcons = _mem.Read32(_store + XsRspCons), rprod = _mem.Read32(_store + XsRspProd);
        bool wrote = false;
        while (_xsOut.Count > 0 && rprod - rcons < XsRingSize)
        {
            _mem.Write8(_store + XsRspOff + (rprod & (XsRingSize - 1)), _xsOut.Dequeue());
            rprod++;
            wrote = true;
        }
        if (!wrote) return;
        _mem.Write32(_store + XsRspProd, rprod);
        _hv.Events.NotifyFromBackend(Boot.BuiltDomain.StoreEvtchn);
    }

    private static uint U32(ReadOnlySpan<byte> b, int at) => System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(b[at..]);

    private void Serialize(XsMessage m)
    {
        Span<byte> h = stackalloc byte[XsWire.HeaderSize];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(h, m.Type);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(h[4..], m.ReqId);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(h[8..], m.TxId);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(h[12..], (uint)m.Payload.Length);
        foreach (byte b in h) _xsOut.Enqueue(b);
        foreach (byte b in m.Payload) _xsOut.Enqueue(b);
    }
}
