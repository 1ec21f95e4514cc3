using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Session;
using Replayvisor.Engine.Trace;
using Replayvisor.Engine.Xen;

namespace Replayvisor.Replay.Tests;

/// <summary>
/// The vcpuop guest (guests/vcpuop, docs/xen-model.md "Several vCPUs"): what VCPUOP_initialise takes
/// from a context, SCHEDOP_poll wakeups, VCPUOP_send_nmi, the runstate of vCPUs not running and the
/// grant table version, each checked by the guest against Xen's answers for its profile (non-PAE
/// 3.1, PAE 4.19), then recorded and replayed bit-exactly with several vCPUs.
/// </summary>
public class VcpuOpGuestTests
{
    private static (MachineExit Exit, string Console) Run(bool pae, int vcpus)
    {
        var m = new XenMachine(Guests.Image("vcpuop", pae),
            new XenMachineOptions { MemoryMiB = 32, Hypervisor = new HypervisorOptions { VcpuCount = vcpus } });
        var console = new BufferConsoleSink();
        m.Hypervisor.ConsoleSink = console;
        return (m.Run(100_000_000), console.Text);
    }

    [Theory]
    [InlineData(false, 1, "NMIs taken 0 0")]
    [InlineData(true, 1, "NMIs taken 3 0")]
    [InlineData(false, 2, "NMIs taken 0 0")]
    [InlineData(true, 2, "NMIs taken 3 1")]
    [InlineData(false, 3, "NMIs taken 0 0")]
    [InlineData(true, 3, "NMIs taken 3 1")]
    public void TheGuestPassesWithEveryVcpuCount(bool pae, int vcpus, string nmis)
    {
        var (exit, text) = Run(pae, vcpus);
        Assert.True(exit.Kind == MachineExitKind.PoweredOff, $"{exit}\n{text}");
        Assert.Contains($"vcpuop: {vcpus} vCPUs\n", text);
        Assert.Contains($"vcpuop: {nmis}, poll results 0 0 0 0 0\n", text);
        Assert.Contains("ALL PASS vcpuop", text);
        Assert.DoesNotContain("FAIL", text);
        if (vcpus >= 2) Assert.Contains(pae ? "another port pending does not wake a poller of one port (4.19)" : "any port pending wakes every poller (3.1)", text);
        if (vcpus >= 3) Assert.Contains(pae ? "VGCF_online clears the down flag (4.19)" : "VGCF_online means nothing to 3.1", text);
    }

    [Theory]
    [InlineData(false, ClockKind.Virtual)]
    [InlineData(true, ClockKind.Virtual)]
    [InlineData(false, ClockKind.Host)]
    [InlineData(true, ClockKind.Host)]
    public void RecordsAndReplaysBitExactlyWithThreeVcpus(bool pae, ClockKind clock)
    {
        var rec = Recordings.Record("vcpuop", pae, clock, checkpointInterval: 20_000, vcpus: 3);
        Assert.True(rec.Result.Exit.Kind == MachineExitKind.PoweredOff, $"{rec.Result.Exit}\n{rec.Console}");
        Assert.Contains("ALL PASS vcpuop", rec.Console);
        var r = Recordings.Replay(rec.Trace);
        Assert.True(r.Divergence == null, r.Report);
        Assert.Equal(rec.Result.Exit.Icount, r.Exit.Icount);
        Assert.Equal(MachineExitKind.PoweredOff, r.Exit.Kind);
        using var reader = TraceReader.Open(new MemoryStream(rec.Trace));
        var events = reader.ReadEvents().ToList();
        foreach (int v in new[] { 1, 2 })
            Assert.Contains(events, e => e is HypercallEvent h && h.Vcpu == v);
    }
}
