using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Xen;
using static Replayvisor.Engine.Tests.Xen.XenTestGuest;

namespace Replayvisor.Engine.Tests.Xen;

/// <summary>vcpu_op on a domain with several vCPUs (docs/xen-model.md "Several vCPUs"), as xen/common/domain.c answers.</summary>
public class VcpuOpTests
{
    private static XenMachine Machine(bool pae, int vcpus) =>
        new XenTestGuest().Main(a => Shutdown(a)).Machine(pae, new XenMachineOptions { MemoryMiB = 8, Hypervisor = new HypervisorOptions { VcpuCount = vcpus } });

    private static long Call(XenMachine m, uint cmd, uint id, uint arg = 0) => m.Hypervisor.Call(24, new HypercallArgs(cmd, id, arg, 0, 0, 0));

    [Theory]
    [InlineData(false, -Errno.EINVAL)] // 3.1: past MAX_VIRT_CPUS
    [InlineData(true, -Errno.ENOENT)]  // 4.19: domain_vcpu() only
    public void VcpuIdsPastTheCountGiveXensErrors(bool pae, long past32)
    {
        var m = Machine(pae, 4);
        Assert.Equal(1, Call(m, 3, 0));
        Assert.Equal(0, Call(m, 3, 3));                 // created down
        Assert.Equal(-Errno.ENOENT, Call(m, 3, 4));
        Assert.Equal(-Errno.ENOENT, Call(m, 1, 31));
        Assert.Equal(past32, Call(m, 3, 32));
        Assert.Equal(past32, Call(m, 0, 0xFFFFFFFF, Scratch));
        Assert.Equal(-Errno.EINVAL, Call(m, 1, 2));     // up before initialise
        Assert.Equal(-Errno.EEXIST, Call(m, 0, 0, Scratch));
        Assert.Equal(-Errno.EFAULT, Call(m, 0, 1, 0x10000000));
    }

    [Fact]
    public void InitialiseRefusesABaseThatIsNotAPageTable()
    {
        var m = Machine(true, 2);
        // A zeroed context: CR3 0 names frame 0, which the domain does not own → -EINVAL, and vCPU 1 stays uninitialised.
        for (uint i = 0; i < Hypervisor.VcpuGuestContextSize; i += 4) Write32(m, Scratch + i, 0);
        Assert.Equal(-Errno.EINVAL, Call(m, 0, 1, Scratch));
        Assert.False(m.Hypervisor.Vcpus[1].Initialised);
        Assert.Equal(-Errno.EINVAL, Call(m, 1, 1));
    }

    [Fact]
    public void TakingDownTheLastVcpuPowersOffOn419()
    {
        var m = Machine(true, 2);
        Assert.Equal(0, Call(m, 2, 0));
        Assert.Equal(ShutdownKind.PowerOff, m.Hypervisor.Shutdown);
    }

    [Fact]
    public void TakingDownTheLastVcpuOn31LeavesNothingToRun()
    {
        var m = Machine(false, 2);
        Assert.Equal(0, Call(m, 2, 0));
        Assert.Equal(ShutdownKind.None, m.Hypervisor.Shutdown);
        Assert.Equal(0, Call(m, 3, 0));
        var exit = m.Run(1_000_000);
        Assert.Equal(MachineExitKind.Idle, exit.Kind);
    }
}
