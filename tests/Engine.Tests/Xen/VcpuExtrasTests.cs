using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Xen;
using static Replayvisor.Engine.Tests.Xen.XenTestGuest;

namespace Replayvisor.Engine.Tests.Xen;

/// <summary>
/// VCPUOP_send_nmi, GNTTABOP_set_version/get_version and the runstate arithmetic per profile
/// (docs/xen-model.md "Several vCPUs", "Grant table version"), as common/domain.c,
/// common/grant_table.c and common/sched/core.c answer a 32-bit PV guest.
/// </summary>
public class VcpuExtrasTests
{
    private const uint Unmapped = 0x1000;

    private static XenMachine Machine(bool pae, int vcpus = 1) =>
        new XenTestGuest().Main(a => Shutdown(a)).Machine(pae, new XenMachineOptions { MemoryMiB = 8, Hypervisor = new HypervisorOptions { VcpuCount = vcpus } });

    private static long Hc(XenMachine m, int nr, uint a1, uint a2 = 0, uint a3 = 0) => m.Hypervisor.Call(nr, new HypercallArgs(a1, a2, a3, 0, 0, 0));

    [Fact]
    public void SendNmiIsAbsentFrom31()
    {
        var m = Machine(false, 2);
        Assert.Equal(-Errno.ENOSYS, Hc(m, 24, 11, 1));
        Assert.False(m.Hypervisor.Vcpus[1].NmiPending);
    }

    [Fact]
    public void SendNmiSetsThePendingFlagOnceAndKicksABlockedVcpu()
    {
        var m = Machine(true, 2);
        var v1 = m.Hypervisor.Vcpus[1];
        Assert.Equal(-Errno.EINVAL, Hc(m, 24, 11, 1, Scratch)); // a non-null argument
        Assert.Equal(-Errno.ENOENT, Hc(m, 24, 11, 2));
        Assert.False(v1.NmiPending);
        v1.Blocked = true;
        Assert.Equal(0, Hc(m, 24, 11, 1));
        Assert.True(v1.NmiPending);
        Assert.False(v1.Blocked); // vcpu_kick → vcpu_unblock
        v1.Blocked = true;
        Assert.Equal(0, Hc(m, 24, 11, 1)); // already pending: test_and_set_bool finds it set, no kick
        Assert.True(v1.Blocked);
    }

    [Fact]
    public void NmiCallbackRegistrationOn419WritesTrapTableEntryTwo()
    {
        var m = Machine(true);
        Write32(m, Scratch, 0xC0101234);
        Assert.Equal(0, Hc(m, 28, 0, Scratch));
        var t = m.Hypervisor.Vcpu.Traps[2];
        Assert.Equal(0xC0101234u, t.Address);
        Assert.Equal(Replayvisor.Engine.Boot.XenLayout.FlatKernelCs, t.Cs);
        Assert.True(t.MasksEvents);
        Assert.Equal(0, Hc(m, 28, 1));
        Assert.Equal(default, m.Hypervisor.Vcpu.Traps[2]);
        Assert.Equal(-Errno.EFAULT, Hc(m, 28, 0, Unmapped));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void GrantTableVersionOps(bool pae)
    {
        var m = Machine(pae);
        Write32(m, Scratch, 2);
        if (!pae)
        {
            Assert.Equal(-Errno.ENOSYS, Hc(m, 20, 8, Scratch, 1));
            Assert.Equal(-Errno.ENOSYS, Hc(m, 20, 10, Scratch, 1));
            Assert.Equal(2u, Read32(m, Scratch));
            return;
        }
        Assert.Equal(-Errno.ENOSYS, Hc(m, 20, 8, Scratch, 1)); // v2 with max_grant_version 1
        Assert.Equal(1u, Read32(m, Scratch));                  // the version in use written back
        foreach (uint bad in new uint[] { 0, 3, 0xFFFFFFFF })
        {
            Write32(m, Scratch, bad);
            Assert.Equal(-Errno.EINVAL, Hc(m, 20, 8, Scratch, 1));
            Assert.Equal(1u, Read32(m, Scratch));
        }
        Write32(m, Scratch, 1);
        Assert.Equal(0, Hc(m, 20, 8, Scratch, 1));
        Assert.Equal(-Errno.EFAULT, Hc(m, 20, 8, Unmapped, 1));
        // get_version: { domid_t dom; u16 pad; u32 version; }
        Write32(m, Scratch + 0x10, EventChannels.DomidSelf); Write32(m, Scratch + 0x14, 9);
        Assert.Equal(0, Hc(m, 20, 10, Scratch + 0x10, 1));
        Assert.Equal(1u, Read32(m, Scratch + 0x14));
        Write32(m, Scratch + 0x10, m.Hypervisor.Domid); Write32(m, Scratch + 0x14, 9);
        Assert.Equal(0, Hc(m, 20, 10, Scratch + 0x10, 1));
        Assert.Equal(1u, Read32(m, Scratch + 0x14));
        Write32(m, Scratch + 0x10, 0); Write32(m, Scratch + 0x14, 9);
        Assert.Equal(-Errno.EPERM, Hc(m, 20, 10, Scratch + 0x10, 1)); // domain 0 from a domU (XSM_TARGET)
        Assert.Equal(9u, Read32(m, Scratch + 0x14));
        Write32(m, Scratch + 0x10, 77);
        Assert.Equal(-Errno.ESRCH, Hc(m, 20, 10, Scratch + 0x10, 1));
        Assert.Equal(-Errno.EFAULT, Hc(m, 20, 10, Unmapped, 1));
    }

    [Fact]
    public void RunstateChangesAccumulateTheTimeOfTheStateLeft()
    {
        var r = new Runstate(Runstate.StateOffline, 0, 0, 0, 0, 0)
            .ChangeTo(Runstate.StateRunnable, 1_000)
            .ChangeTo(Runstate.StateRunning, 1_500)
            .ChangeTo(Runstate.StateBlocked, 4_000)
            .ChangeTo(Runstate.StateRunnable, 10_000);
        Assert.Equal(new Runstate(Runstate.StateRunnable, 10_000, 2_500, 500, 6_000, 1_000), r);
        byte[] now = r.Encode(12_000); // vcpu_runstate_get: the current state's time up to now, entry time kept
        Assert.Equal(Runstate.StateRunnable, BitConverter.ToInt32(now, 0));
        Assert.Equal(10_000ul, BitConverter.ToUInt64(now, 4));
        Assert.Equal([2_500ul, 2_500ul, 6_000ul, 1_000ul], Enumerable.Range(0, 4).Select(i => BitConverter.ToUInt64(now, 12 + i * 8)));
        byte[] raw = r.Encode(null);    // the runstate area's raw copy
        Assert.Equal(500ul, BitConverter.ToUInt64(raw, 20));
    }

    [Fact]
    public void SeveralVcpusStartWithVcpuZeroRunningAndTheOthersOffline()
    {
        var m = Machine(true, 3);
        Assert.Equal(Runstate.StateRunning, m.Hypervisor.RunstateOf(0).State);
        Assert.Equal(Runstate.StateOffline, m.Hypervisor.RunstateOf(1).State);
        Assert.Equal(Runstate.StateOffline, m.Hypervisor.RunstateOf(2).State);
        Assert.Equal(0ul, m.Hypervisor.RunstateOf(2).EntryNs);
    }
}
