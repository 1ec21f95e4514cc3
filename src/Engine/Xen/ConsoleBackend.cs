using Replayvisor.Engine.Memory;
using Replayvisor.Engine.State;

namespace Replayvisor.Engine.Xen;

/// <summary>
/// The backends domain 0 would run for a domU, played by the model: xenconsoled on the PV console
/// ring (start_info console.domU) and a xenstored that answers every request with XS_ERROR
/// "ENOSYS" (so a guest probing xenstore gets an answer instead of hanging). Rings are accessed by
/// machine address (xen-abi.md §4.7). Also holds the console_io read queue (dom0's serial input).
/// </summary>
public sealed class ConsoleBackend : IStateHashable
{
    public const uint BackendStorePort = 1, BackendConsolePort = 2;
    private const int InSize = 1024, OutSize = 2048, InOff = 0, OutOff = 0x400;
    private const int InCons = 0xC00, InProd = 0xC04, OutCons = 0xC08, OutProd = 0xC0C;
    private const int XsReqOff = 0, XsRspOff = 0x400, XsRingSize = 1024;
    private const int XsReqCons = 0x800, XsReqProd = 0x804, XsRspCons = 0x808, XsRspProd = 0x80C;
    private const uint XsError = 16;

    private readonly Hypervisor _hv;
    private readonly PhysicalMemory _mem;
    private readonly ulong _console, _store;
    private readonly bool _hasRings;
    private readonly Queue<byte> _ringInput = new();
    private readonly Queue<byte> _consoleIoInput = new();

    internal ConsoleBackend(Hypervisor hv)
    {
        _hv = hv;
        _mem = hv.Domain.Memory;
        _hasRings = !hv.Domain.InitialDomain;
        _console = (ulong)hv.Domain.ConsoleMfn << 12;
        _store = (ulong)hv.Domain.StoreMfn << 12;
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

    private void AnswerXenstore()
    {
        uint cons = _mem.Read32(_store + XsReqCons), prod = _mem.Read32(_store + XsReqProd);
        bool answered = false;
        while (prod - cons >= 16 && prod - cons <= XsRingSize)
        {
            uint type = ReadReq(cons), reqId = ReadReq(cons + 4), txId = ReadReq(cons + 8), len = ReadReq(cons + 12);
            _ = type;
            if (len > 4096 || prod - cons < 16 + len) break; // wait for the rest of the message
            cons += 16 + len;
            byte[] payload = "ENOSYS\0"u8.ToArray();
            if (!WriteRsp(XsError, reqId, txId, payload)) break;
            answered = true;
        }
        _mem.Write32(_store + XsReqCons, cons);
        if (answered) _hv.Events.NotifyFromBackend(Boot.BuiltDomain.StoreEvtchn);
    }

    private uint ReadReq(uint index)
    {
        uint v = 0;
        for (uint i = 0; i < 4; i++) v |= (uint)_mem.Read8(_store + XsReqOff + ((index + i) & (XsRingSize - 1))) << (int)(8 * i);
        return v;
    }

    private bool WriteRsp(uint type, uint reqId, uint txId, byte[] payload)
    {
        uint cons = _mem.Read32(_store + XsRspCons), prod = _mem.Read32(_store + XsRspProd);
        int total = 16 + payload.Length;
        if (XsRingSize - (prod - cons) < total) return false;
        Span<byte> msg = stackalloc byte[total];
        BitConverter.TryWriteBytes(msg, type);
        BitConverter.TryWriteBytes(msg[4..], reqId);
        BitConverter.TryWriteBytes(msg[8..], txId);
        BitConverter.TryWriteBytes(msg[12..], (uint)payload.Length);
        payload.CopyTo(msg[16..]);
        for (int i = 0; i < total; i++) _mem.Write8(_store + XsRspOff + ((prod + (uint)i) & (XsRingSize - 1)), msg[i]);
        _mem.Write32(_store + XsRspProd, prod + (uint)total);
        return true;
    }
}
