using Replayvisor.Engine.Session;
using Replayvisor.Record;

namespace Replayvisor.Cli.Bench;

/// <summary>
/// The consumer of an <see cref="EventBatcher"/> that empties each full batch and has it filled again:
/// the recording's per-event path on the guest's thread (the Xen model's observation and the batch
/// appends) without a trace behind it, for <c>bench --guest</c>'s "observing only" run.
/// </summary>
internal sealed class DiscardedBatches : IEventBatchConsumer
{
    private EventBatcher? _batcher;

    /// <summary>The recorder's <see cref="TraceObserver"/> (as <c>record</c> sets it up) with its batches discarded; <paramref name="batcher"/> counts the events appended.</summary>
    public static TraceObserver Observer(HypercallOutputLevel outputs, out EventBatcher batcher)
    {
        var consumer = new DiscardedBatches();
        batcher = consumer._batcher = new EventBatcher(consumer, new EventBatch(), 0);
        // Only the events the batches do not take (rare ones: exceptions, console output) come here.
        return RecorderObserver.Create(_ => { }, outputs, batcher, plain: null);
    }

    public void BatchFull()
    {
        var batch = _batcher!.Take();
        batch.Clear();
        _batcher.Continue(batch);
    }

    public void ThrowRefusal() => throw new InvalidOperationException("discarded batches are never refused");
}
