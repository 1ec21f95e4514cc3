using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Xen;
using static Replayvisor.Engine.Tests.Xen.XenTestGuest;
using Replayvisor.Engine.Time;

namespace Replayvisor.Engine.Tests.Xen;

/// <summary>Event channels (§9), time and timers (§9), sched_op/vcpu_op rules.</summary>
public class EventAndTimeTests
{
    private const uint Unmapped = 0x10000000;
    private readonly XenMachine _m = new XenTestGuest().Main(a => Shutdown(a)).Machine();
    private Hypervisor Hv => _m.Hypervisor;
    private SharedInfoPage Si => Hv.SharedInfo;

    private long Call(int nr, uint a1 = 0, uint a2 = 0, uint a3 = 0) => Hv.Call(nr, new HypercallArgs(a1, a2, a3, 0, 0, 0));
    private uint R32(uint va) => Read32(_m, va);
    private void W32(uint va, uint v) => Write32(_m, va, v);

    private long Evtchn(uint cmd, params uint[] words)
    {
        for (int i = 0; i < words.Length; i++) W32(Scratch + (uint)i * 4, words[i]);
        return Call(32, cmd, Scratch);
    }

    [Fact]
    public void BuilderPortsAreInterdomainToTheBackend()
    {
        Assert.Equal(0, Evtchn(5, EventChannels.DomidSelf, 1));
        Assert.Equal(2u, R32(Scratch + 8));     // EVTCHNSTAT_interdomain
        Assert.Equal(0u, R32(Scratch + 16) & 0xFFFF);
        Assert.Equal(0, Evtchn(5, EventChannels.DomidSelf, 0));
        Assert.Equal(0u, R32(Scratch + 8));     // port 0 is reserved: reads closed
        Assert.Equal(-Errno.EINVAL, Evtchn(3, 0)); // and cannot be closed
        Assert.Equal(-Errno.EPERM, Evtchn(5, 0, 1));
        Assert.Equal(-Errno.EINVAL, Evtchn(5, EventChannels.DomidSelf, 1024));
    }

    [Fact]
    public void BindVirqRules()
    {
        Assert.Equal(0, Evtchn(1, 0, 0));          // VIRQ_TIMER on vcpu 0
        uint port = R32(Scratch + 8);
        Assert.Equal(3u, port);                      // lowest free after the builder's ports 1 and 2
        Assert.Equal(-Errno.EEXIST, Evtchn(1, 0, 0));
        Assert.Equal(-Errno.EINVAL, Evtchn(1, 24, 0)); // bad virq
        Assert.Equal(-Errno.EINVAL, Evtchn(1, 2, 1));  // global VIRQ_CONSOLE with vcpu 1
        Assert.Equal(-Errno.ENOENT, Evtchn(1, 1, 1));  // VIRQ_DEBUG on a vcpu that does not exist
        Assert.Equal(0, Evtchn(1, 2, 0));
        Assert.Equal(0, Evtchn(5, EventChannels.DomidSelf, port));
        Assert.Equal(4u, R32(Scratch + 8));          // EVTCHNSTAT_virq
        Assert.Equal(0u, R32(Scratch + 16));         // virq 0
        Assert.Equal(-Errno.EINVAL, Evtchn(8, port, 0)); // bind_vcpu on a per-vcpu virq
        Assert.Equal(0, Evtchn(3, port));
        Assert.Equal(-Errno.EINVAL, Evtchn(3, port));
        Assert.Equal(0, Evtchn(1, 0, 0));            // rebinding after close works
    }

    [Fact]
    public void IpiSendSetsTheTwoLevelBitmapAndUpcallPending()
    {
        Assert.Equal(0, Evtchn(7, 0));
        uint port = R32(Scratch + 4);
        Assert.Equal(-Errno.ENOENT, Evtchn(7, 5));
        Assert.Equal(0, Evtchn(4, port));
        Assert.True(Si.TestPending(port));
        Assert.Equal(1u << (int)(port / 32), Si.PendingSel(0));
        Assert.Equal(1, Si.UpcallPending(0));
        Assert.Equal(-Errno.EINVAL, Evtchn(8, port, 0)); // bind_vcpu on an ipi
        Assert.Equal(-Errno.EINVAL, Evtchn(4, 1000));     // a free port
        Assert.Equal(-Errno.EINVAL, Evtchn(4, 5000));
    }

    [Fact]
    public void MaskedPortOnlyGetsItsPendingBitUntilUnmask()
    {
        Assert.Equal(0, Evtchn(7, 0));
        uint port = R32(Scratch + 4);
        _m.Cpu.Memory.Write32(((ulong)Si.Mfn << 12) + SharedInfo.EvtchnMask, 1u << (int)port);
        Assert.Equal(0, Evtchn(4, port));
        Assert.True(Si.TestPending(port));
        Assert.Equal(0u, Si.PendingSel(0));
        Assert.Equal(0, Si.UpcallPending(0));
        Assert.Equal(0, Evtchn(9, port));           // unmask: now the edge arrives
        Assert.Equal(1, Si.UpcallPending(0));
        Assert.NotEqual(0u, Si.PendingSel(0));
        Assert.Equal(-Errno.EINVAL, Evtchn(9, 1024));
    }

    [Fact]
    public void AllocUnboundAndLoopbackInterdomain()
    {
        Assert.Equal(0, Evtchn(6, EventChannels.DomidSelf | (EventChannels.DomidSelf << 16)));
        uint unbound = R32(Scratch + 4);
        Assert.Equal(-Errno.EPERM, Evtchn(6, 1 | (1u << 16)));    // a domU must say DOMID_SELF
        Assert.Equal(0, Evtchn(4, unbound));                        // unbound: silently dropped
        Assert.False(Si.TestPending(unbound));
        Assert.Equal(0, Evtchn(0, EventChannels.DomidSelf, unbound));
        uint local = R32(Scratch + 8);
        Assert.True(Si.TestPending(local));                          // Xen re-raises possibly lost notifications
        Si.ClearPending(local);
        Assert.Equal(0, Evtchn(4, local));
        Assert.True(Si.TestPending(unbound));
        Assert.Equal(0, Evtchn(5, EventChannels.DomidSelf, unbound));
        Assert.Equal(2u, R32(Scratch + 8));
        Assert.Equal(local, R32(Scratch + 20));
        Assert.Equal(-Errno.EINVAL, Evtchn(0, EventChannels.DomidSelf, unbound)); // no longer unbound
        Assert.Equal(-Errno.ESRCH, Evtchn(0, 77, 1));
        Assert.Equal(0, Evtchn(3, local));
        Assert.Equal(0, Evtchn(5, EventChannels.DomidSelf, unbound));
        Assert.Equal(1u, R32(Scratch + 8));                           // the peer went back to unbound
        Assert.Equal(-Errno.ENOSYS, Evtchn(15)); // past the FIFO ops (11-14, 4.19)
        Assert.Equal(-Errno.EFAULT, Call(32, 4, Unmapped));
    }

    [Fact]
    public void CompatEventChannelOpAndReset()
    {
        W32(Scratch + 0x100, 7); W32(Scratch + 0x104, 0);   // {cmd bind_ipi, vcpu 0, port out}
        Assert.Equal(0, Call(16, Scratch + 0x100));
        uint port = R32(Scratch + 0x108);
        Assert.Equal(PortState.Ipi, Hv.Events[port].State);
        W32(Scratch + 0x100, 10); W32(Scratch + 0x104, EventChannels.DomidSelf);
        Assert.Equal(0, Call(16, Scratch + 0x100));
        Assert.Equal(PortState.Free, Hv.Events[port].State);
        Assert.Equal(PortState.Free, Hv.Events[1].State);
        Assert.Equal(PortState.Reserved, Hv.Events[0].State);
        W32(Scratch + 0x100, 42);
        Assert.Equal(-Errno.ENOSYS, Call(16, Scratch + 0x100));
    }

    [Fact]
    public void TimeInfoProtocolAndScale()
    {
        Assert.Equal(((uint)0x80000000, (sbyte)1), Hypervisor.TimeScale(1_000_000_000));
        Assert.Equal(((uint)0xD5555555, (sbyte)-1), Hypervisor.TimeScale(2_400_000_000));
        ulong t = ((ulong)Si.Mfn << 12) + SharedInfo.VcpuTime;
        var mem = _m.Cpu.Memory;
        uint version = mem.Read32(t);
        Assert.Equal(0u, version & 1);
        Assert.NotEqual(0u, version);
        Assert.Equal(0x80000000u, mem.Read32(t + 0x18));
        Assert.Equal(1, (sbyte)mem.Read8(t + 0x1C));
        Assert.Equal(mem.Read64(t + 0x08), mem.Read64(t + 0x10)); // TSC and system time in step at 1 GHz
        ulong s = (ulong)Si.Mfn << 12;
        Assert.Equal(VirtualClock.DefaultEpochSeconds, mem.Read32(s + SharedInfo.WcSec));
        Assert.Equal(0u, mem.Read32(s + SharedInfo.WcVersion) & 1);
        Hv.UpdateVcpuTime();
        Assert.Equal(version + 2, mem.Read32(t));
    }

    [Fact]
    public void GuestTimeFormulaMatchesTheClock()
    {
        var c = new VirtualClock();
        c.Idle(100, 5_000);
        Assert.Equal(5_000ul, c.SystemTimeNs(100));
        Assert.Equal(5_010ul, c.SystemTimeNs(110));
        Assert.Equal(c.Tsc(110), c.SystemTimeNs(110));
        Assert.Equal(210ul, c.IcountAt(110, 5_110));
        Assert.Equal(110ul, c.IcountAt(110, 10));
        // Δtsc << 1 × 0x80000000 >> 32 = Δtsc
        ulong delta = 12345;
        Assert.Equal(delta, ((delta << 1) * 0x80000000ul) >> 32);
    }

    [Fact]
    public void SetTimerOpRules()
    {
        ((VirtualClock)_m.Clock).Idle(_m.Icount, 1_000_000);
        ulong now = Hv.NowNs;
        Assert.Equal(0, Call(15, (uint)(now + 5000), (uint)((now + 5000) >> 32)));
        Assert.Equal(now + 5000, Hv.Vcpu.SingleshotNs);
        Assert.Equal(0, Call(15, 0, 0));
        Assert.Equal(0ul, Hv.Vcpu.SingleshotNs);
        Assert.Equal(0, Call(15, 0, 0x80000000));                 // negative as s64
        Assert.Equal(Hv.NowNs + 100_000_000, Hv.Vcpu.SingleshotNs);
        Assert.Equal(0, Call(15, 0, 0x00100000));                  // ≥ 2^52 ns ahead
        Assert.Equal(Hv.NowNs + 100_000_000, Hv.Vcpu.SingleshotNs);
        Assert.Equal(0, Call(15, 1, 0));                           // in the past: fires at the next check
        Assert.Equal(0, Evtchn(1, 0, 0));
        uint port = R32(Scratch + 8);
        Hv.RunTimers();
        Assert.True(Si.TestPending(port));
        Assert.Equal(0ul, Hv.Vcpu.SingleshotNs);
    }

    [Fact]
    public void VcpuOpTimersAndRules()
    {
        ((VirtualClock)_m.Clock).Idle(_m.Icount, 1_000_000);
        ulong now = Hv.NowNs;
        W32(Scratch, 10); W32(Scratch + 4, 0); W32(Scratch + 8, 1);      // timeout 10 ns (past) with the future flag
        Assert.Equal(-Errno.ETIME, Call(24, 8, 0, Scratch));
        W32(Scratch, (uint)(now + 1_000_000)); W32(Scratch + 4, 0);
        Assert.Equal(0, Call(24, 8, 0, Scratch));
        Assert.Equal(now + 1_000_000, Hv.Vcpu.SingleshotNs);
        Assert.Equal(0, Call(24, 9, 0, 0));
        Assert.Equal(0ul, Hv.Vcpu.SingleshotNs);
        W32(Scratch, 999_999); W32(Scratch + 4, 0);
        Assert.Equal(-Errno.EINVAL, Call(24, 6, 0, Scratch));              // period < 1 ms
        W32(Scratch, 4_000_000);
        Assert.Equal(0, Call(24, 6, 0, Scratch));
        Assert.Equal(4_000_000ul, Hv.Vcpu.PeriodNs);
        Assert.Equal(0, Call(24, 7, 0, 0));
        Assert.Equal(0ul, Hv.Vcpu.PeriodNs);
        Assert.Equal(1, Call(24, 3, 0, 0));                                // is_up
        Assert.Equal(-Errno.ENOENT, Call(24, 3, 1, 0));
        // Past MAX_VIRT_CPUS: 3.1 -EINVAL; 4.x compat_vcpu_op checks only d->max_vcpus (-ENOENT).
        Assert.Equal(Hv.Xen4 ? -Errno.ENOENT : -Errno.EINVAL, Call(24, 3, 32, 0));
        W32(Scratch, 0x0FFFFFFF); W32(Scratch + 4, 0); W32(Scratch + 8, 0);  // register_vcpu_info on a frame not the domain's:
        Assert.Equal(Hv.Xen4 ? -Errno.EINVAL : -Errno.ENOSYS, Call(24, 10, 0, Scratch)); // 4.19 refuses it, 3.1 has no such op
        Assert.Equal(-Errno.EEXIST, Call(24, 0, 0, Scratch));              // initialise: already initialised
        Assert.Equal(0, Call(24, 4, 0, Scratch));                          // runstate: running
        Assert.Equal(0u, R32(Scratch));
        Assert.Equal(-Errno.EFAULT, Call(24, 4, 0, Unmapped));
        Assert.Equal(-Errno.ENOSYS, Call(24, 42, 0, 0));
    }

    [Fact]
    public void PeriodicTimerDefaultsTo100HzAndCollapsesMissedPeriods()
    {
        Assert.Equal(10_000_000ul, Hv.Vcpu.PeriodNs);
        Assert.Equal(0, Evtchn(1, 0, 0));
        uint port = R32(Scratch + 8);
        ((VirtualClock)_m.Clock).Idle(_m.Icount, 35_000_000);    // three and a half periods missed
        Hv.RunTimers();
        Assert.True(Si.TestPending(port));
        Assert.Equal(35_000_000ul + 10_000_000, Hv.Vcpu.PeriodicNextNs); // one event, next a period from now
    }

    [Fact]
    public void SchedOpRules()
    {
        Assert.Equal(0, Call(29, 0, 0));                               // yield
        W32(Scratch, Scratch + 0x100); W32(Scratch + 4, 200);
        Assert.Equal(-Errno.EINVAL, Call(29, 3, Scratch));             // poll: > 128 ports
        W32(Scratch, Scratch + 0x100); W32(Scratch + 4, 1); W32(Scratch + 8, 0); W32(Scratch + 12, 0);
        W32(Scratch + 0x100, 2000);
        Assert.Equal(-Errno.EINVAL, Call(29, 3, Scratch));             // poll: bad port
        Assert.Equal(0, Evtchn(7, 0));
        uint port = R32(Scratch + 4);
        Evtchn(4, port);
        W32(Scratch, Scratch + 0x100); W32(Scratch + 4, 1); W32(Scratch + 8, 0); W32(Scratch + 12, 0);
        W32(Scratch + 0x100, port);
        Assert.Equal(0, Call(29, 3, Scratch));                         // already pending: returns at once
        Assert.False(Hv.Vcpu.Blocked);
        Assert.Equal(-Errno.EFAULT, Call(29, 2, Unmapped));
        Assert.Equal(-Errno.ENOSYS, Call(29, 9, 0));
        Assert.Equal(-Errno.ENOSYS, Call(6, 9, 0));
    }
}
