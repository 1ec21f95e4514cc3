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
}
