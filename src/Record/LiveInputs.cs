using System.Collections.Concurrent;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Trace;

namespace Replayvisor.Record;

/// <summary>
/// Inputs from the host for `run` and `record`: console input read from stdin on a background
/// thread, chaos-mode delays from a seeded generator, Ctrl-C/SIGTERM, and periodic checkpoints.
/// Every value that reaches the guest is logged with its instruction count (when a log is given).
/// </summary>
public sealed class LiveInputs : IRunInputs, IDisposable
{
    /// <summary>How often (in instructions) a running guest stops to look for input.</summary>
    public const ulong PollSlice = 100_000;

    private readonly ConcurrentQueue<byte[]> _input = new();
    private readonly SemaphoreSlim _arrived = new(0);
    private readonly Action<TraceEvent>? _log;
    private readonly Random? _chaos;
    private readonly Action<ulong>? _checkpoint;
    private readonly ulong _checkpointInterval;
    private readonly HostClock? _hostClock;
    private volatile bool _eof;
    private volatile bool _stop;
    private ulong _lastCheckpoint = ulong.MaxValue;
    private readonly Thread? _reader;

    public LiveInputs(Stream? stdin, Action<TraceEvent>? log = null, int? chaosSeed = null,
        ulong checkpointInterval = 0, Action<ulong>? checkpoint = null, HostClock? hostClock = null)
    {
        _log = log;
        _chaos = chaosSeed is int seed ? new Random(seed) : null;
        _checkpointInterval = checkpointInterval;
        _checkpoint = checkpoint;
        _hostClock = hostClock;
        if (stdin == null) { _eof = true; return; }
        _reader = new Thread(() => ReadLoop(stdin)) { IsBackground = true, Name = "stdin reader" };
        _reader.Start();
    }

    /// <summary>Bytes of console input injected so far.</summary>
    public long InjectedBytes { get; private set; }

    public bool StopRequested => _stop;

    /// <summary>Called at every poll (the recorder flushes the trace about once a second from here).</summary>
    public Action? Periodic { get; init; }

    /// <summary>Ends the run at the next instruction boundary the machine offers (Ctrl-C, SIGTERM).</summary>
    public void RequestStop()
    {
        _stop = true;
        _arrived.Release();
        _hostClock?.Wake();
    }

    private void ReadLoop(Stream stdin)
    {
        var buf = new byte[4096];
        try
        {
            int n;
            while ((n = stdin.Read(buf, 0, buf.Length)) > 0)
            {
                _input.Enqueue(buf.AsSpan(0, n).ToArray());
                _arrived.Release();
                _hostClock?.Wake();
            }
        }
        catch (IOException) { }
        catch (ObjectDisposedException) { }
        _eof = true;
        _arrived.Release();
        _hostClock?.Wake();
    }

    public ulong NextPoll(ulong icount)
    {
        ulong next = icount + PollSlice;
        if (_checkpointInterval != 0)
        {
            ulong cp = (icount / _checkpointInterval + 1) * _checkpointInterval;
            if (icount % _checkpointInterval == 0 && _lastCheckpoint != icount) cp = icount;
            next = Math.Min(next, cp);
        }
        return next;
    }

    public bool Poll(XenMachine machine, bool blocked)
    {
        ulong icount = machine.Icount;
        if (_checkpointInterval != 0 && icount % _checkpointInterval == 0 && _lastCheckpoint != icount)
        {
            _lastCheckpoint = icount;
            _checkpoint?.Invoke(icount);
        }
        bool injected = false;
        // Chaos: hold input back for a while, as a slow terminal or backend would.
        if (!_input.IsEmpty && (_chaos == null || blocked || _chaos.Next(4) == 0)) injected = Inject(machine);
        Periodic?.Invoke();
        return injected;
    }

    private bool Inject(XenMachine machine)
    {
        var chunk = new List<byte>();
        while (_input.TryDequeue(out var part)) chunk.AddRange(part);
        if (chunk.Count == 0) return false;
        byte[] bytes = chunk.ToArray();
        _log?.Invoke(new ConsoleInputEvent(machine.Icount, bytes));
        InjectedBytes += bytes.Length;
        machine.PushConsoleInput(bytes);
        return true;
    }

    public bool WaitForInput(XenMachine machine)
    {
        while (!_stop)
        {
            if (!_input.IsEmpty)
            {
                bool injected = Inject(machine);
                Periodic?.Invoke();
                return injected;
            }
            if (_eof) return false;
            _arrived.Wait(200);
        }
        return false;
    }

    public ulong TimerDelay(ulong icount)
    {
        if (_chaos == null) return 0;
        // A legal delay: a timer interrupt may reach the guest late, never early.
        ulong delay = _chaos.Next(8) == 0 ? (ulong)_chaos.Next(1, 2_000_000) : (ulong)_chaos.Next(0, 20_000);
        _log?.Invoke(new AsyncEvent(icount, AsyncKind.ChaosDelay, 0, delay));
        return delay;
    }

    /// <summary>Stops offering input; the stdin thread is a background thread and ends with the process.</summary>
    public void Dispose() => _stop = true;
}
