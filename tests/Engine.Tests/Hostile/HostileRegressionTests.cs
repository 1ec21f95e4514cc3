using Replayvisor.Engine.Machine;

namespace Replayvisor.Engine.Tests.Hostile;

/// <summary>Fixed cases for what the hostile fuzzers found.</summary>
public class HostileRegressionTests
{
    /// <summary>
    /// Random bytes seed 1122: #GP goes to a trap-table CS that does not load (an LDT selector), so
    /// Xen bounces to the failsafe callback, whose handler faults on its first instruction from an
    /// outer ring; every frame lands at the same kernel stack top and no instruction ever completes.
    /// Time being the instruction count, XenMachine.Run never reached its limit and hung.
    /// </summary>
    [Fact]
    public void AFaultStormCrashesTheDomainInsteadOfHanging()
    {
        var o = HostileRun.Check(RandomCodeTests.RandomBytes(1122, pae: true), alsoWithoutBlockCache: true);
        Assert.Equal(MachineExitKind.Crashed, o.Exit.Kind);
        Assert.True(o.Exit.Detail.Contains("fault storm", StringComparison.Ordinal), o.Exit.ToString());
    }

    /// <summary>
    /// Random hypercalls seed 5026: an mmu_update remapped a page the guest had just used, without a
    /// TLB flush. The live run kept using the stale TLB entry (as a real CPU may, and as
    /// MmuextOpTests.TlbFlushesAndInvlpgTakeEffect requires); a run restored from a snapshot starts
    /// with an empty TLB and saw the new mapping, so snapshot + restore did not continue as the
    /// original run did. Flushing on every L1/L2 change in EntryUpdates fixes it but contradicts that
    /// test; snapshotting the TLB would keep both. Left for a design decision.
    /// </summary>
    [Fact]
    public void APageTableUpdateWithoutAFlushDoesNotMakeARestoredRunDiffer()
    {
        var c = RandomHypercallTests.Case(5026, pae: true);
        var a = new XenMachine(c.Image, new XenMachineOptions { MemoryMiB = 8 });
        c.Prepare!(a);
        Assert.Equal(MachineExitKind.InstructionLimit, a.Run(1881).Kind);
        var snap = a.Snapshot();
        var b = new XenMachine(c.Image, new XenMachineOptions { MemoryMiB = 8 });
        b.Restore(snap);
        a.Run(2000);
        b.Run(2000);
        Assert.Equal(a.Icount, b.Icount);
        Assert.Equal(a.StateHash(), b.StateHash());
    }
}
