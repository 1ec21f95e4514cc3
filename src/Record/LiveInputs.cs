using System.Collections.Concurrent;
using Replayvisor.Engine.Inputs;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Trace;

namespace Replayvisor.Record;

/// <summary>
/// The host side of `run` and `record`: console input read from stdin on a background thread,
/// Ctrl-C/SIGTERM, and the record halves of the input sources (src/Engine/Inputs), which log
/// every value that reaches the guest with its instruction count (when a log is given).
/// </summary>
public sealed class LiveInputs : IRunInputs, IDisposable
{
    private readonly ConcurrentQueue<byte[]> _input = new();
    private readonly SemaphoreSlim _arrived = new(0);
    private readonly ConsoleInputRecorder _console;
    private readonly ChaosRecorder? _chaos;
    private readonly Checkpoints _checkpoints;
    private readonly HostClock? _hostClock;
    private volatile bool _eof;
    private volatile bool _stop;
    private readonly Thread? _reader;

    /// <param name="checkpoints">The checkpoint schedule (its emit writes the trace).</param>
    public LiveInputs(Stream? stdin, Action<TraceEvent>? log, int? chaosSeed, Checkpoints checkpoints, HostClock? hostClock = null)
    {
        _console = new ConsoleInputRecorder(log);
        _chaos = chaosSeed is int seed ? new ChaosRecorder(new SeededRandom(seed), log) : null;
        _checkpoints = checkpoints;
        _hostClock = hostClock;
        if (stdin == null) { _eof = true; return; }
        _reader = new Thread(() => ReadLoop(stdin)) { IsBackground = true, Name = "stdin reader" };
        _reader.Start();
    }

    /// <summary>Bytes of console input injected so far.</summary>
    public long InjectedBytes => _console.InjectedBytes;

    public bool StopRequested => _stop;

    /// <summary>
    /// Called at every <see cref="PeriodicEvery"/>th poll, at every poll that injected console input,
    /// and after input injected while waiting (the recorder flushes the trace about once a second from
    /// here). Not at every poll: a blocking guest polls at every block (the ticker guest 20,000 times
    /// in 4.9 million instructions), and polls come at least every <see cref="PollPeriod.Instructions"/>
    /// instructions while it runs, so a call is at most that many polls' instructions late.
    /// </summary>
    public Action? Periodic { get; init; }

    /// <summary>Polls per call of <see cref="Periodic"/> when no input is injected.</summary>
    public const int PeriodicEvery = 16;
    private int _pollsSincePeriodic;

    /// <summary>Called before waiting for console input (the recorder writes its pending events first).</summary>
    public Action? BeforeWait { get; init; }

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

    /// <summary>A running guest stops to look for input every <see cref="PollPeriod.Instructions"/> instructions.</summary>
    public ulong NextPoll(ulong icount) => Math.Min(PollPeriod.After(icount), _checkpoints.NextPoll(icount));

    public bool Poll(XenMachine machine, bool blocked)
    {
        _checkpoints.Poll(machine);
        bool injected = false;
        if (!_input.IsEmpty && (_chaos == null || !_chaos.HoldsInputBack(blocked))) injected = Inject(machine);
        if ((++_pollsSincePeriodic >= PeriodicEvery || injected) && Periodic is { } periodic)
        {
            _pollsSincePeriodic = 0;
            periodic();
        }
        return injected;
    }

    private bool Inject(XenMachine machine, bool whileWaiting = false)
    {
        var chunk = new List<byte>();
        while (_input.TryDequeue(out var part)) chunk.AddRange(part);
        if (chunk.Count == 0) return false;
        _console.Inject(machine, chunk.ToArray(), whileWaiting);
        return true;
    }

    public bool WaitForInput(XenMachine machine)
    {
        while (!_stop)
        {
            if (!_input.IsEmpty)
            {
                bool injected = Inject(machine, whileWaiting: true);
                Periodic?.Invoke();
                return injected;
            }
            if (_eof) return false;
            BeforeWait?.Invoke();
            _arrived.Wait(200);
        }
        return false;
    }

    public ulong TimerDelay(ulong icount) => _chaos?.TimerDelay(icount) ?? 0;

    /// <summary>These inputs as a struct type argument of XenMachine.Run&lt;TInputs&gt;: the run loop is compiled for them, the stop checks inlined.</summary>
    public readonly struct Direct(LiveInputs inputs) : IRunInputs
    {
        public ulong NextPoll(ulong icount) => inputs.NextPoll(icount);
        public bool Poll(XenMachine machine, bool blocked) => inputs.Poll(machine, blocked);
        public bool WaitForInput(XenMachine machine) => inputs.WaitForInput(machine);
        public ulong TimerDelay(ulong icount) => inputs.TimerDelay(icount);
        public bool StopRequested => inputs.StopRequested;
    }

    /// <summary>Stops offering input; the stdin thread is a background thread and ends with the process.</summary>
    public void Dispose() => _stop = true;

    /// <summary>Chaos mode's numbers: System.Random with the recording's seed.</summary>
    private sealed class SeededRandom(int seed) : IChaosSource
    {
        private readonly Random _random = new(seed);
        public int Next(int maxExclusive) => _random.Next(maxExclusive);
        public int Next(int minInclusive, int maxExclusive) => _random.Next(minInclusive, maxExclusive);
    }
}
