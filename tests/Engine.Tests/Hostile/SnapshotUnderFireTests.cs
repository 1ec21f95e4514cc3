using Replayvisor.Engine.Machine;
using Xunit.Abstractions;

namespace Replayvisor.Engine.Tests.Hostile;

/// <summary>
/// Hostile guests stopped half way: the run split in two must end where the uninterrupted run
/// ends, and a snapshot taken at the split, restored into the same machine and into a fresh one,
/// must continue to the same state.
/// </summary>
/// <remarks>
/// Known: with REPLAYVISOR_HOSTILE_ITERATIONS in the hundreds, a guest that uses a stale TLB entry
/// (an mmu_update not followed by a flush) across the split fails the restore comparisons, because
/// the TLB is not part of a snapshot (see HostileRegressionTests, the skipped test). The CI seeds do not.
/// </remarks>
public class SnapshotUnderFireTests(ITestOutputHelper output)
{
    private static (MachineExit Exit, byte[] Hash, ulong Icount) Finish(XenMachine m, ulong end)
    {
        var e = HostileRun.Drive(m, end);
        return (e, m.StateHash(), m.Icount);
    }

    private void CheckSplit(HostileCase c, ulong split)
    {
        var whole = HostileRun.Once(c);
        var m = new XenMachine(c.Image, new XenMachineOptions { MemoryMiB = 8 });
        c.Prepare?.Invoke(m);
        ulong end = m.Icount + c.Budget;
        var first = m.Run(split);
        if (first.Kind != MachineExitKind.InstructionLimit) return; // ended before the split: nothing to compare
        var snap = m.Snapshot();
        var a = Finish(m, end);
        Assert.True(a.Icount == whole.Icount && a.Hash.AsSpan().SequenceEqual(whole.Hash), $"{c.Name}: split at {split} ends differently: {a.Exit} / {whole.Exit}");
        m.Restore(snap);
        var b = Finish(m, end);
        Assert.True(b.Icount == a.Icount && b.Hash.AsSpan().SequenceEqual(a.Hash), $"{c.Name}: restored in place ends differently: {b.Exit} / {a.Exit}");
        var fresh = new XenMachine(c.Image, new XenMachineOptions { MemoryMiB = 8 });
        fresh.Restore(snap);
        var f = Finish(fresh, end);
        Assert.True(f.Icount == a.Icount && f.Hash.AsSpan().SequenceEqual(a.Hash), $"{c.Name}: restored into a fresh machine ends differently: {f.Exit} / {a.Exit}");
        output.WriteLine($"{c.Name}: {a.Exit}");
    }

    [Fact]
    public void HostileRunsSplitAndRestoredEndInTheSameState()
    {
        int n = HostileRun.Iterations(6);
        for (int i = 0; i < n; i++)
        {
            var r = new Random(9000 + i);
            CheckSplit(RandomCodeTests.RandomBytes(1000 + i, pae: true), (ulong)r.Next(20, 400));
            CheckSplit(RandomCodeTests.SelfModifying(2000 + i, pae: i % 2 == 0), (ulong)r.Next(20, 400));
            CheckSplit(RandomInstructionTests.Case(3000 + i, user: i % 2 == 0), (ulong)r.Next(20, 400));
            CheckSplit(RandomHypercallTests.Case(5000 + i, pae: true), (ulong)r.Next(1, 20000));
        }
    }
}
