using System.Diagnostics;
using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Inputs;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Session;
using Replayvisor.Engine.Time;
using Replayvisor.Engine.Trace;
using Replayvisor.Engine.Xen;

namespace Replayvisor.Record;

/// <summary>What `run` and `record` are asked to do.</summary>
public sealed record LiveRequest
{
    public required byte[] Kernel { get; init; }
    public required string ImageName { get; init; }
    public XenMachineOptions Machine { get; init; } = new();
    public ulong MaxInstructions { get; init; } = ulong.MaxValue;
    public ClockKind Clock { get; init; }
    public int? ChaosSeed { get; init; }
    public ulong CheckpointInterval { get; init; }
    /// <summary>Where the trace goes; null for a plain run.</summary>
    public Stream? Trace { get; init; }
    public required Stream ConsoleOutput { get; init; }
    public Stream? Stdin { get; init; }
    public string EngineBuild { get; init; } = "dev";
    /// <summary>What hypercall events carry about guest memory written back (record: digest by default, data with --hypercall-data).</summary>
    public HypercallOutputLevel HypercallOutputs { get; init; } = HypercallOutputLevel.Digest;
    /// <summary>Test hook: wraps the run's input source (e.g. to inject an engine perturbation at an instruction count).</summary>
    public Func<IRunInputs, IRunInputs>? WrapInputs { get; init; }
    /// <summary>Chunking of the trace (events and bytes per chunk).</summary>
    public TraceWriterOptions? WriterOptions { get; init; }
    /// <summary>The longest wall time recorded events wait in memory before they are written (docs/record-replay.md).</summary>
    public TimeSpan FlushInterval { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>
    /// The trace is encoded, compressed and written on a thread of its own (<see cref="TraceWriterThread"/>);
    /// false: on the recording thread. The trace's bytes are the same either way.
    /// </summary>
    public bool WriterThread { get; init; } = true;

    /// <summary>What the trace header records about this run.</summary>
    public RunOptions RunOptions => new()
    {
        MemoryMiB = Machine.MemoryMiB,
        CommandLine = Machine.CommandLine,
        InitialDomain = Machine.InitialDomain,
        EpochSeconds = Machine.EpochSeconds,
        Clock = Clock,
        ChaosSeed = ChaosSeed,
        CheckpointInterval = CheckpointInterval,
        MaxInstructions = MaxInstructions,
        // The profile as resolved for this kernel ("auto" never reaches a trace).
        Xen = Machine.Hypervisor.Abi ?? XenAbis.For(XenGuestInfo.Parse(Kernel).IsPae),
        Console = Machine.Hypervisor.Console,
        Vcpus = Machine.Hypervisor.VcpuCount,
        HypercallOutputs = HypercallOutputs,
        UpcallSites = true,
        ExceptionHandlers = true,
    };
}

public sealed record LiveResult(MachineExit Exit, TimeSpan Elapsed, HypervisorStats Stats, long TraceEvents);

/// <summary>
/// Runs a guest live: console to the given stream, stdin as console input, and (for `record`)
/// every input and every hypercall, upcall, exception and checkpoint into a trace. A run ended by
/// <see cref="Stop"/> still closes the trace properly; a recorder killed outright leaves every
/// chunk flushed so far readable.
/// </summary>
public sealed class LiveSession : IDisposable
{
    private readonly LiveRequest _req;
    private readonly ITraceSink? _writer;
    private readonly LiveInputs _inputs;
    private readonly HostClock? _hostClock;

    public LiveSession(LiveRequest req)
    {
        _req = req;
        Action<TraceEvent>? log = null;
        if (req.Trace != null)
        {
            var header = TraceHeader.Create(req.EngineBuild, req.ImageName, req.Kernel, "xen-pv-x86_32", req.RunOptions.ToHeaderOptions());
            TraceWriter Open()
            {
                var traceWriter = new TraceWriter(req.Trace, header, req.Kernel, req.WriterOptions, leaveOpen: true);
                traceWriter.Flush(); // header and guest image on disk before the guest runs (Run waits for them): a kill from then on leaves a readable trace
                return traceWriter;
            }
            // With a writer thread, that thread writes the header and compresses the image while this one builds the machine.
            var writer = _writer = req.WriterThread ? new TraceWriterThread(Open) : new DirectTraceSink(Open());
            // Every event names the vCPU it belongs to (docs/trace-format.md); the clock is read once before the machine exists.
            log = e => writer.Append(VcpuStamp.Apply(e, Machine?.Hypervisor.CurrentVcpu ?? 0));
        }
        try
        {
            if (req.Clock == ClockKind.Host) _hostClock = new HostClock { BeforeLongWait = _writer == null ? null : FlushPending };
            IGuestClock? clock = _hostClock == null ? null : new RecordingClock(_hostClock, log ?? (_ => { }));
            Machine = new XenMachine(req.Kernel, req.Machine with { Clock = clock });
            Machine.Hypervisor.ConsoleSink = new StreamConsoleSink(req.ConsoleOutput);
            if (log != null)
                Machine.Hypervisor.Observer = RecorderObserver.Create(log, req.HypercallOutputs,
                    (_writer as TraceWriterThread)?.Batcher, _writer is TraceWriterThread ? null : new PlainWriter(this));
            var checkpoints = new Checkpoints(log != null ? req.CheckpointInterval : 0, e => log!(e));
            _inputs = new LiveInputs(req.Stdin, log, req.ChaosSeed, checkpoints, _hostClock)
            {
                Periodic = _writer == null ? null : FlushNowAndThen,
                BeforeWait = _writer == null ? null : FlushPending,
            };
        }
        catch
        {
            // A kernel the machine refuses: end the writer thread (what was written stays readable).
            try { _writer?.Dispose(); }
            finally { _hostClock?.Dispose(); }
            throw;
        }
    }

    public XenMachine Machine { get; }

    /// <summary>Hypercalls and upcalls without event objects, for a trace written on the recording thread (with the writer thread they go to its <see cref="TraceWriterThread.Batcher"/>).</summary>
    private sealed class PlainWriter(LiveSession s) : PlainEvents
    {
        public override bool Hypercall(ulong icount, int number, ReadOnlySpan<uint> args, long result, ulong digest, uint site)
        {
            s._writer!.AppendHypercall(icount, number, args, result, digest, site, s.Machine.Hypervisor.CurrentVcpu);
            return true;
        }

        public override bool Upcall(ulong icount, int vcpu, ReadOnlySpan<uint> ports, uint eip, uint handler)
        {
            if (vcpu < 0) return false; // never from the model; the event path stores one whole
            s._writer!.AppendUpcall(icount, vcpu, ports, eip, handler);
            return true;
        }
    }

    /// <summary>
    /// Makes the recording durable: recorded events reach the file at least once per
    /// <see cref="LiveRequest.FlushInterval"/> of wall time, before the recorder waits for the host
    /// (an idle guest under the host clock, a guest waiting for console input), after console input,
    /// and about every <see cref="FlushEveryInstructions"/> instructions (asked at every
    /// <see cref="LiveInputs.PeriodicEvery"/>th poll: at most that many poll periods late). A recorder
    /// killed outright loses at most about a second of events (docs/record-replay.md).
    /// </summary>
    private void FlushNowAndThen()
    {
        ulong icount = Machine.Icount;
        if (icount < _nextFlushIcount && _inputs.InjectedBytes == _flushedInput && !ClockSaysFlush()) return;
        // Asked, not waited for: the writer thread writes it while the guest runs on (a flush before a host wait is waited for).
        _writer!.RequestFlush();
        _flushedAtMs = Environment.TickCount64;
        _nextFlushIcount = (icount / FlushEveryInstructions + 1) * FlushEveryInstructions;
        _flushedInput = _inputs.InjectedBytes;
    }

    /// <summary>
    /// Whether <see cref="LiveRequest.FlushInterval"/> has passed since the last flush (looked at by
    /// <see cref="FlushNowAndThen"/>, every <see cref="LiveInputs.PeriodicEvery"/>th poll, so polls add
    /// at most a small fraction of a second to the interval).
    /// </summary>
    private bool ClockSaysFlush() => Environment.TickCount64 - _flushedAtMs >= (long)_req.FlushInterval.TotalMilliseconds;

    /// <summary>Writes the events recorded so far, if any (called before the recorder waits).</summary>
    private void FlushPending()
    {
        if (_writer!.PendingEvents > 0) Flush();
    }

    private void Flush()
    {
        _writer!.Flush();
        _flushedAtMs = Environment.TickCount64;
    }

    public const ulong FlushEveryInstructions = 50_000_000;
    /// <summary>The next multiple of <see cref="FlushEveryInstructions"/> after the last flush (compared at each call of FlushNowAndThen instead of dividing).</summary>
    private ulong _nextFlushIcount = FlushEveryInstructions;
    private long _flushedInput;
    /// <summary>
    /// When the last flush was (Environment.TickCount64, milliseconds): this is asked at every 16th poll,
    /// every time the guest blocks, and the millisecond tick costs a fraction of a Stopwatch read.
    /// </summary>
    private long _flushedAtMs = Environment.TickCount64;

    /// <summary>Ends the run at the next instruction boundary (safe to call from a signal handler).</summary>
    public void Stop() => _inputs.RequestStop();

    public LiveResult Run()
    {
        _writer?.WaitOpened();
        var sw = Stopwatch.StartNew();
        MachineExit exit = _req.WrapInputs is { } wrap ? Machine.Run(_req.MaxInstructions, wrap(_inputs)) : Machine.Run(_req.MaxInstructions, new LiveInputs.Direct(_inputs));
        sw.Stop();
        if (_writer != null)
        {
            if (RunOutcome.ClosingEvent(exit) is { } closing) _writer.Append(closing);
            // The guest time is taken from the virtual clock only: a host clock read here would be an unlogged input.
            ulong guestNs = Machine.Clock is VirtualClock vc ? vc.SystemTimeNs(exit.Icount) : 0;
            _writer.Complete(RunOutcome.Summary(exit, Machine.StateHash(), guestNs));
        }
        _req.ConsoleOutput.Flush();
        return new LiveResult(exit, sw.Elapsed, Machine.Hypervisor.Stats, _writer?.EventCount ?? 0);
    }

    public void Dispose()
    {
        _inputs.Dispose();
        _writer?.Dispose();
        _hostClock?.Dispose();
    }
}
