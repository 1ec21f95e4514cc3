using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Session;
using Replayvisor.Engine.Trace;
using Replayvisor.Engine.Xen;
using Replayvisor.Record;

namespace Replayvisor.Replay.Tests;

/// <summary>
/// The trace writer thread (<see cref="TraceWriterThread"/>, docs/record-replay.md "The trace writer
/// thread"): the bytes are those of the writer on the recording thread, a flush means the bytes are
/// in the stream, and an error on the writer thread reaches the recording thread as the same exception.
/// </summary>
public sealed class TraceWriterThreadTests
{
    private static readonly byte[] Image = [1, 2, 3];
    private static TraceHeader Header => TraceHeader.Create("test", "image", Image, "xen-pv-x86_32");

    /// <summary>Hypercalls (some with more than six arguments), upcalls (some with many ports), and whole events of other kinds, in icount order; every so often a flush.</summary>
    private static List<TraceEvent?> RandomCalls(int seed, int count)
    {
        var rng = new Random(seed);
        var calls = new List<TraceEvent?>();
        ulong icount = 0;
        for (int i = 0; i < count; i++)
        {
            icount += (ulong)rng.Next(3) * (ulong)rng.Next(1 << rng.Next(20));
            calls.Add(rng.Next(8) switch
            {
                0 or 1 or 2 => new HypercallEvent(icount, rng.Next(40), Enumerable.Range(0, rng.Next(10) == 0 ? rng.Next(16) : rng.Next(7)).Select(_ => (uint)rng.NextInt64(1L << 32)).ToArray(),
                    rng.Next(-40, 3), OutputDigest: (ulong)rng.Next(2) * (ulong)rng.NextInt64(), Site: (uint)rng.Next()) { Vcpu = rng.Next(2) },
                3 or 4 => new UpcallEvent(icount, rng.Next(2), Enumerable.Range(0, rng.Next(20) == 0 ? rng.Next(300) : rng.Next(3)).Select(_ => (uint)rng.Next(1024)).ToArray())
                    { Eip = (uint)rng.Next(), Handler = 0xC0001000 },
                5 => new TimeEvent(icount, TimeKind.SystemTimeNs, (ulong)rng.NextInt64()),
                6 => new ExceptionEvent(icount, 14, 2, (uint)rng.Next(), (uint)rng.Next()),
                _ => rng.Next(50) == 0 ? null : new AsyncEvent(icount, AsyncKind.ChaosDelay, 0, (ulong)rng.Next(100)),
            });
        }
        return calls;
    }

    private static readonly TraceSummary Summary = new(1, ExitKind.GuestShutdown, ShutdownReason.PowerOff);

    /// <summary>Hypercalls and upcalls go in as plain values, the rest as objects; null is a flush.</summary>
    private static void Play(List<TraceEvent?> calls, Action<TraceEvent> append,
        Action<HypercallEvent> hypercall, Action<UpcallEvent> upcall, Action flush)
    {
        foreach (var c in calls)
        {
            switch (c)
            {
                case null: flush(); break;
                case HypercallEvent h: hypercall(h); break;
                case UpcallEvent u: upcall(u); break;
                default: append(c); break;
            }
        }
    }

    private static byte[] OnTheRecordingThread(List<TraceEvent?> calls, TraceWriterOptions options)
    {
        var ms = new MemoryStream();
        using (var w = new TraceWriter(ms, Header, Image, options, leaveOpen: true))
        {
            Play(calls, w.Append, h => w.AppendHypercall(h.Icount, h.Number, h.Args.AsSpan(), h.Result, h.OutputDigest, h.Site, h.Vcpu),
                u => w.AppendUpcall(u.Icount, u.Vcpu, u.Ports.AsSpan(), u.Eip, u.Handler), w.Flush);
            w.Complete(Summary);
        }
        return ms.ToArray();
    }

    private static byte[] OnTheWriterThread(List<TraceEvent?> calls, TraceWriterOptions options, bool openedThere = false)
    {
        var ms = new MemoryStream();
        using (var w = openedThere
            ? new TraceWriterThread(() => new TraceWriter(ms, Header, Image, options, leaveOpen: true))
            : new TraceWriterThread(new TraceWriter(ms, Header, Image, options, leaveOpen: true)))
        {
            // Every other flush is only requested (the recorder's periodic flushes): the same bytes.
            // A call with six arguments goes in as the Xen model's do, as the six registers (TraceObserver.Batches).
            int flushes = 0;
            Play(calls, w.Append, h =>
                {
                    if (h.Args.AsSpan().Length == 6)
                        w.Batcher.Hypercall(h.Icount, h.Number, new HypercallArgs(h.Args[0], h.Args[1], h.Args[2], h.Args[3], h.Args[4], h.Args[5]),
                            h.Result, h.OutputDigest, h.Site, h.Vcpu);
                    else w.AppendHypercall(h.Icount, h.Number, h.Args.AsSpan(), h.Result, h.OutputDigest, h.Site, h.Vcpu);
                },
                u => w.AppendUpcall(u.Icount, u.Vcpu, u.Ports.AsSpan(), u.Eip, u.Handler), () =>
                {
                    if (flushes++ % 2 == 0) w.RequestFlush();
                    else w.Flush();
                });
            Assert.Equal(calls.Count(c => c != null), w.EventCount);
            w.Complete(Summary);
        }
        return ms.ToArray();
    }

    [Theory]
    [InlineData(1, 50, 64)]
    [InlineData(2, 30_000, 500)]
    [InlineData(3, 30_000, 4096)]
    public void WritesTheBytesOfTheWriterOnTheRecordingThread(int seed, int count, int chunkEvents)
    {
        // 30,000 events are several batches: the recording thread waits for free batches on the way.
        var calls = RandomCalls(seed, count);
        var options = new TraceWriterOptions { MaxChunkEvents = chunkEvents };
        byte[] expected = OnTheRecordingThread(calls, options);
        Assert.Equal(expected, OnTheWriterThread(calls, options));
        // Opened on the writer thread, the events appended before it has written the header coming after it.
        Assert.Equal(expected, OnTheWriterThread(calls, options, openedThere: true));
        using var reader = TraceReader.Open(new MemoryStream(expected));
        Assert.Equal(calls.Count(c => c != null), reader.ReadEvents().Count());
    }

    [Fact]
    public void AFlushMeansEveryEventAppendedIsInTheStream()
    {
        var calls = RandomCalls(4, 9_500).Where(c => c != null).Take(9_000).ToList();
        var ms = new MemoryStream();
        using var w = new TraceWriterThread(new TraceWriter(ms, Header, Image, leaveOpen: true));
        int appended = 0;
        foreach (int upTo in new[] { 1, 10, 5_000, 9_000 })
        {
            int flushed = appended;
            for (; appended < upTo; appended++) w.Append(calls[appended]!);
            Assert.Equal(upTo - flushed, w.PendingEvents);
            w.Flush();
            Assert.Equal(0, w.PendingEvents);
            // What the stream holds now is a readable trace (incomplete, no index) with exactly those events.
            using var reader = TraceReader.Open(new MemoryStream(ms.ToArray()));
            Assert.Null(reader.Summary);
            Assert.Equal(calls.Take(upTo), reader.ReadEvents());
        }
    }

    [Fact]
    public void ARequestedFlushIsWrittenWithoutAWaitAndAFlushAfterItWaitsForBoth()
    {
        var calls = RandomCalls(5, 6_000).Where(c => c != null).Take(5_000).ToList();
        var ms = new MemoryStream();
        using var w = new TraceWriterThread(new TraceWriter(ms, Header, Image, new TraceWriterOptions { MaxChunkEvents = 100_000 }, leaveOpen: true));
        for (int i = 0; i < 3_000; i++) w.Append(calls[i]!);
        w.RequestFlush();
        Assert.Equal(3_000, w.PendingEvents); // not known to be in the stream yet
        for (int i = 3_000; i < 5_000; i++) w.Append(calls[i]!);
        w.Flush();
        Assert.Equal(0, w.PendingEvents);
        // Two chunks: the requested flush cut one at 3,000 events (the chunk limit would not have).
        using var reader = TraceReader.Open(new MemoryStream(ms.ToArray()));
        Assert.Equal(2, reader.Index.Count);
        Assert.Equal(calls, reader.ReadEvents());
    }

    /// <summary>A stream that signals every write.</summary>
    private sealed class SignallingStream : MemoryStream
    {
        public ManualResetEventSlim Written { get; } = new(false);
        public override void Write(byte[] buffer, int offset, int count) { base.Write(buffer, offset, count); Written.Set(); }
        public override void Write(ReadOnlySpan<byte> buffer) { base.Write(buffer); Written.Set(); }
    }

    [Fact]
    public void AFullBatchIsWrittenWithoutAWakeUpOrAFlush()
    {
        // One full batch is handed over (fewer than the pipeline's half, at which the recording
        // thread wakes the writer): the writer, looking by itself, writes its chunks anyway.
        var s = new SignallingStream();
        using var w = new TraceWriterThread(new TraceWriter(s, Header, Image, new TraceWriterOptions { MaxChunkEvents = 100 }, leaveOpen: true));
        s.Written.Reset();
        for (int i = 0; i <= EventBatch.Capacity; i++) w.AppendHypercall((ulong)i, 29, [1, 2], 0, 0, 0, 0);
        Assert.True(s.Written.Wait(TimeSpan.FromSeconds(10)), "the writer never wrote the full batch");
    }

    [Fact]
    public void EachBatchIsFilledAgainOnlyAfterAllTheOthers()
    {
        // docs/record-replay.md "Filled in turn": refilling the batch the writer has just read made every
        // entry's store wait for its cache line. Flushes in between (the writer is then done with every
        // batch but the next) must not change the order either.
        var filled = new List<EventBatch>();
        using var w = new TraceWriterThread(new TraceWriter(new MemoryStream(), Header, Image, leaveOpen: true));
        w.Filling = filled.Add;
        ulong icount = 0;
        for (int round = 0; round < 3 * TraceWriterThread.MaxBatches; round++)
        {
            for (int i = 0; i < EventBatch.Capacity; i++) w.AppendHypercall(icount++, 29, [1, 2], 0, 0, 0, 0);
            if (round % 5 == 0) w.Flush();
        }
        w.Complete(Summary);
        Assert.True(filled.Count >= 3 * TraceWriterThread.MaxBatches, $"only {filled.Count} hand-overs");
        // Every batch in existence is filled, in one fixed order, over and over (the first, the
        // constructor's, comes round last).
        Assert.Equal(TraceWriterThread.MaxBatches, filled.Take(TraceWriterThread.MaxBatches).Distinct().Count());
        for (int i = TraceWriterThread.MaxBatches; i < filled.Count; i++)
            Assert.Same(filled[i - TraceWriterThread.MaxBatches], filled[i]);
    }

    [Fact]
    public void DisposingWithoutCompletingWritesEveryEventAppended()
    {
        var calls = RandomCalls(5, 10_000).Where(c => c != null).ToList();
        var ms = new MemoryStream();
        using (var w = new TraceWriterThread(new TraceWriter(ms, Header, Image, leaveOpen: true)))
            foreach (var e in calls) w.Append(e!);
        using var reader = TraceReader.Open(new MemoryStream(ms.ToArray()));
        Assert.Equal(calls, reader.ReadEvents());
    }

    /// <summary>A stream that fails every write that would make it hold more than <see cref="Limit"/> bytes (a full disk).</summary>
    private sealed class FullDisk : MemoryStream
    {
        public readonly IOException Error = new("No space left on device");
        public long Limit { get; set; } = long.MaxValue;
        public override void Write(byte[] buffer, int offset, int count)
        {
            if (Length + count > Limit) throw Error;
            base.Write(buffer, offset, count);
        }
        public override void Write(ReadOnlySpan<byte> buffer) => Write(buffer.ToArray(), 0, buffer.Length);
    }

    [Fact]
    public void AWriteErrorOnTheWriterThreadIsThrownOnTheRecordingThread()
    {
        var calls = RandomCalls(6, 40_000).Where(c => c != null).ToList();
        var stream = new FullDisk();
        var w = new TraceWriterThread(new TraceWriter(stream, Header, Image, new TraceWriterOptions { MaxChunkEvents = 256 }, leaveOpen: true));
        stream.Limit = stream.Length + 20_000;
        // The error comes back at an append (when the batch changes hands) or at the latest at the flush.
        var thrown = Assert.Throws<IOException>(() =>
        {
            foreach (var e in calls) w.Append(e!);
            w.Flush();
        });
        Assert.Same(stream.Error, thrown);
        // Reported once: the writer refuses more work, and disposing does not throw it again.
        Assert.Throws<InvalidOperationException>(() => w.Append(calls[^1]!));
        w.Dispose();
        // Nothing after the error: the stream holds whole chunks only, readable up to the failed one.
        using var reader = TraceReader.Open(new MemoryStream(stream.ToArray()));
        var events = reader.ReadEvents().ToList();
        Assert.Equal(calls.Take(events.Count), events);
        Assert.True(events.Count < calls.Count);
    }

    [Fact]
    public void AWriteErrorInTheLastEventsIsThrownByDispose()
    {
        var stream = new FullDisk();
        var w = new TraceWriterThread(new TraceWriter(stream, Header, Image, leaveOpen: true));
        stream.Limit = stream.Length;
        w.Append(new TimeEvent(5, TimeKind.SystemTimeNs, 1));
        // Nothing has failed yet (the event waits in a batch); writing it at Dispose fails.
        Assert.Same(stream.Error, Assert.Throws<IOException>(w.Dispose));
    }

    /// <summary>A stream that counts its flushes.</summary>
    private sealed class CountingStream : MemoryStream
    {
        public int Flushes;
        public override void Flush() => Flushes++;
    }

    [Fact]
    public void WaitOpenedReturnsOnceTheHeaderAndImageAreFlushedToTheStream()
    {
        var opened = new MemoryStream();
        _ = new TraceWriter(opened, Header, Image); // what a writer puts in the stream when it is built
        var stream = new CountingStream();
        using var w = new TraceWriterThread(() => new TraceWriter(stream, Header, Image, leaveOpen: true));
        w.Append(new TimeEvent(5, TimeKind.SystemTimeNs, 1)); // appending does not wait for the open
        w.WaitOpened();
        Assert.Equal(opened.ToArray(), stream.ToArray()); // the event waits in its batch
        Assert.Equal(1, stream.Flushes);
        w.Flush();
        using var reader = TraceReader.Open(new MemoryStream(stream.ToArray()));
        Assert.Equal([new TimeEvent(5, TimeKind.SystemTimeNs, 1)], reader.ReadEvents());
    }

    [Fact]
    public void AnErrorOpeningTheWriterIsThrownByWaitOpenedAndOnlyThere()
    {
        var stream = new FullDisk { Limit = 4 };
        var w = new TraceWriterThread(() => new TraceWriter(stream, Header, Image, leaveOpen: true));
        Assert.Same(stream.Error, Assert.Throws<IOException>(w.WaitOpened));
        // Reported once: the writer refuses more work, and disposing does not throw it again.
        Assert.Throws<InvalidOperationException>(() => w.Append(new TimeEvent(5, TimeKind.SystemTimeNs, 1)));
        w.Dispose();
        Assert.Equal(0, stream.Length);
    }

    [Fact]
    public void EventsOutOfOrderAreRefusedAtOnce()
    {
        using var w = new TraceWriterThread(new TraceWriter(new MemoryStream(), Header, Image));
        w.AppendHypercall(10, 29, [1, 2], 0, 0, 0, 0);
        Assert.Throws<ArgumentException>(() => w.AppendUpcall(9, 0, [3], 0, 0));
    }

    /// <summary>A whole recording: the trace is the same with the writer thread and without it (flushes every 50 million instructions included).</summary>
    [Theory]
    [InlineData("ticker", true, null)]
    [InlineData("sched", false, 3)]
    [InlineData("events", true, null)]
    [InlineData("smp", true, null, 4)]
    public void ARecordingWritesTheSameBytesWithOrWithoutTheWriterThread(string guest, bool pae, int? chaos, int vcpus = 1)
    {
        byte[] Record(bool writerThread)
        {
            var trace = new MemoryStream();
            using var s = new LiveSession(new LiveRequest
            {
                Kernel = Guests.Image(guest, pae), ImageName = guest,
                Machine = new XenMachineOptions { MemoryMiB = 32, Hypervisor = new HypervisorOptions { VcpuCount = vcpus } },
                ChaosSeed = chaos, CheckpointInterval = 1_000_000, Trace = trace, ConsoleOutput = Stream.Null,
                WriterOptions = new TraceWriterOptions { MaxChunkEvents = 300 }, WriterThread = writerThread,
                // Flushes by wall time would cut chunks wherever a loaded machine happens to be (docs/record-replay.md "Durability").
                FlushInterval = TimeSpan.FromDays(1),
            });
            Assert.Equal(MachineExitKind.PoweredOff, s.Run().Exit.Kind);
            return trace.ToArray();
        }
        Assert.Equal(Record(writerThread: false), Record(writerThread: true));
    }
}
