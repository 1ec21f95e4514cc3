using Replayvisor.Engine.Trace;
using Replayvisor.Engine.Xen.Hypercalls;

namespace Replayvisor.Cli.Tests;

/// <summary>The smp guest (PAE) recorded once with three vCPUs (virtual clock: the same trace every time), for the debuggers' vCPU tests.</summary>
public static class SmpRecording
{
    private static readonly Lazy<string> Three = new(() =>
    {
        string f = Cli.TempFile("smp3.rvt");
        var r = Cli.Run("record", Cli.Guest("smp-pae"), "-o", f, "--vcpus", "3");
        Assert.True(r.Code == 0, r.ToString());
        return f;
    });

    public static string ThreeVcpus => Three.Value;

    private static readonly Lazy<SmpPoints> ThreePoints = new(() =>
    {
        using var reader = TraceReader.Open(File.OpenRead(ThreeVcpus));
        return SmpPoints.Of(reader.ReadEvents());
    });

    /// <summary>Points of <see cref="ThreeVcpus"/> found from its events (the guest's counts change when it does).</summary>
    public static SmpPoints Points => ThreePoints.Value;
}

/// <summary>
/// Where things happen in a recording of the smp guest with three vCPUs (guests/smp/smp.c): found from its
/// events, so tests need no instruction counts of their own.
/// </summary>
/// <param name="Waiting">1,000 instructions after vCPU 0 brought vCPU 1 up: vCPU 1 is runnable and waits while vCPU 0 keeps the CPU until it blocks.</param>
/// <param name="InHandler">40 instructions into vCPU 0's first upcall for port 3 (its IPI): vCPU 1 and then vCPU 2 ran and polled before it.</param>
/// <param name="AfterDown">1,000 instructions after vCPU 1 took itself down: it never runs again.</param>
public sealed record SmpPoints(ulong Waiting, ulong InHandler, ulong AfterDown)
{
    public static SmpPoints Of(IEnumerable<TraceEvent> events)
    {
        ulong? up = null, wake = null, down = null;
        foreach (var e in events)
        {
            if (e is HypercallEvent h && HypercallTable.NameOf(h.Number) == "vcpu_op" && h.Result == 0 && h.Args.Count > 1 && h.Args[1] == 1)
            {
                if (h.Args[0] == 1) up ??= h.Icount;   // VCPUOP_up
                if (h.Args[0] == 2) down ??= h.Icount; // VCPUOP_down
            }
            if (e is UpcallEvent u && u.Vcpu == 0 && u.Ports.Contains(3u)) wake ??= u.Icount;
        }
        Assert.True(up != null && wake != null && down != null, "the smp recording lacks vCPU 1's up, its IPI or its down");
        return new SmpPoints(up.Value + 1000, wake.Value + 40, down.Value + 1000);
    }
}
