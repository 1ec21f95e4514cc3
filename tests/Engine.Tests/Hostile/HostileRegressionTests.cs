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
}
