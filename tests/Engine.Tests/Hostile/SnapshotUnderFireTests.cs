using Replayvisor.Engine.Machine;
using Xunit.Abstractions;

namespace Replayvisor.Engine.Tests.Hostile;

/// <summary>
/// Hostile guests stopped half way: the run split in two must end where the uninterrupted run
/// ends, and a snapshot taken at the split, restored into the same machine and into a fresh one,
/// must continue to the same state.
/// </summary>
public class SnapshotUnderFireTests(ITestOutputHelper output)
{
    private static (MachineExit Exit, byte[] Hash, ulong Icount) Finish(XenMachine m, ulong end)
    {
        var e = HostileRun.Drive(m, end);
        return (e, m.StateHash(), m.Icount);
    }

    /// <summary>
    /// Splits the run at a point strictly inside it (picked from the uninterrupted run's length),
    /// so every case compares something: reaching the split is itself asserted.
    /// </summary>
    private void CheckSplit(HostileCase c, Random pick)
    {
        var whole = HostileRun.Once(c);
        var m = new XenMachine(c.Image, new XenMachineOptions { MemoryMiB = 8 });
        c.Prepare?.Invoke(m);
        ulong start = m.Icount;
        ulong end = start + c.Budget;
        ulong length = whole.Icount - start;
        Assert.True(length >= 2, $"{c.Name}: the run retires {length} instructions, too few to split");
        ulong split = start + 1 + (ulong)pick.NextInt64((long)length - 1);
        var first = HostileRun.Drive(m, split);
        Assert.True(first.Kind == MachineExitKind.InstructionLimit && m.Icount == split,
            $"{c.Name}: the split at {split} (inside a run of {start}..{whole.Icount}) was not reached: {first}");
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
        output.WriteLine($"{c.Name}: split at {split - start} of {length}, {a.Exit}");
    }

    [Fact]
    public void HostileRunsSplitAndRestoredEndInTheSameState()
    {
        int n = HostileRun.Iterations(6);
        for (int i = 0; i < n; i++)
        {
            var r = new Random(9000 + i);
            CheckSplit(RandomCodeTests.RandomBytes(1000 + i, pae: true), r);
            CheckSplit(RandomCodeTests.SelfModifying(2000 + i, pae: i % 2 == 0), r);
            CheckSplit(RandomInstructionTests.Case(3000 + i, user: i % 2 == 0), r);
            CheckSplit(RandomHypercallTests.Case(5000 + i, pae: true), r);
        }
    }
}
