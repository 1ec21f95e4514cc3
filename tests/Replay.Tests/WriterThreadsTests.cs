using System.Runtime.CompilerServices;
using Replayvisor.Engine.Trace;
using Replayvisor.Record;

namespace Replayvisor.Replay.Tests;

/// <summary>Run alone: the other tests' recordings would take and start writer threads meanwhile.</summary>
[CollectionDefinition(nameof(WriterThreadsTests), DisableParallelization = true)]
public sealed class WriterThreadsCollection;

/// <summary>
/// The trace writer threads are kept for the process's next recording (<see cref="WriterThreads"/>):
/// a writer started after another has stopped runs on that thread and starts none; writers at the
/// same time each have a thread of their own; the bytes are as ever (TraceWriterThreadTests).
/// </summary>
[Collection(nameof(WriterThreadsTests))]
public sealed class WriterThreadsTests
{
    /// <summary>A stream that notes the thread of every write.</summary>
    private sealed class ThreadNotingStream : MemoryStream
    {
        public HashSet<int> Writers { get; } = [];
        public override void Write(byte[] buffer, int offset, int count) { Note(); base.Write(buffer, offset, count); }
        public override void Write(ReadOnlySpan<byte> buffer) { Note(); base.Write(buffer); }
        public override void WriteByte(byte value) { Note(); base.WriteByte(value); }
        private void Note() { lock (Writers) Writers.Add(Environment.CurrentManagedThreadId); }
    }

    private static readonly byte[] Image = [1, 2, 3];

    private static TraceWriterThread Open(ThreadNotingStream s) =>
        new(() => new TraceWriter(s, TraceHeader.Create("test", "image", Image, "xen-pv-x86_32"), Image, new TraceWriterOptions(), leaveOpen: true));

    private static readonly TraceSummary Summary = new(1, ExitKind.GuestShutdown, ShutdownReason.PowerOff);

    /// <summary>A whole recording's writes: opened, one hypercall, completed, disposed; the one thread that wrote.</summary>
    private static int Record()
    {
        var s = new ThreadNotingStream();
        using (var w = Open(s))
        {
            w.WaitOpened();
            w.AppendHypercall(5, 29, [1, 2], 0, 0, 0, 0);
            w.Complete(Summary);
        }
        int writer = Assert.Single(s.Writers);
        Assert.NotEqual(Environment.CurrentManagedThreadId, writer);
        Assert.Single(TraceReader.Open(new MemoryStream(s.ToArray())).ReadEvents());
        return writer;
    }

    [Fact]
    public void AWriterStartedAfterAnotherHasStoppedRunsOnItsThread()
    {
        int first = Record();
        int started = WriterThreads.Started;
        for (int i = 0; i < 3; i++) Assert.Equal(first, Record());
        Assert.Equal(started, WriterThreads.Started);
    }

    /// <summary>
    /// A whole recording whose writer's open function holds <paramref name="held"/> (as a recorder's
    /// holds its session, and through it the machine); returns a weak reference to it.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference RecordHolding(object held)
    {
        var s = new ThreadNotingStream();
        using (var w = new TraceWriterThread(() =>
        {
            GC.KeepAlive(held);
            return new TraceWriter(s, TraceHeader.Create("test", "image", Image, "xen-pv-x86_32"), Image, new TraceWriterOptions(), leaveOpen: true);
        }))
        {
            w.WaitOpened();
            w.Complete(Summary);
        }
        return new WeakReference(held);
    }

    [Fact]
    public void AnIdleWriterThreadKeepsNoRecordingAlive()
    {
        var held = RecordHolding(new byte[1024]);
        // The thread goes idle just after the writer's Dispose returns: collect until it has (it never does if it holds the job).
        for (int i = 0; i < 50 && held.IsAlive; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            Thread.Sleep(10);
        }
        Assert.False(held.IsAlive, "the idle writer thread still refers to the last recording");
    }

    [Fact]
    public void WritersAtTheSameTimeHaveThreadsOfTheirOwn()
    {
        Record(); // at least one idle thread
        var a = new ThreadNotingStream();
        var b = new ThreadNotingStream();
        using (var wa = Open(a))
        using (var wb = Open(b))
        {
            wa.WaitOpened();
            wb.WaitOpened();
            wa.Complete(Summary);
            wb.Complete(Summary);
        }
        Assert.NotEqual(Assert.Single(a.Writers), Assert.Single(b.Writers));
    }
}
