namespace Replayvisor.Cli.Tests;

/// <summary>--xen and --console on run and record, and the profile in the trace header.</summary>
public class XenProfileTests
{
    [Fact]
    public void ANonPaeKernelOn419IsABadKernel() =>
        Cli.AssertOneLineError(Cli.Run("run", Cli.Guest("hello"), "--xen", "4.19"), 5, "--xen 3.1");

    [Fact]
    public void AnUnknownProfileIsMisuse() => Assert.Equal(2, Cli.Run("run", Cli.Guest("hello-pae"), "--xen", "4.2").Code);

    [Fact]
    public void AnUnknownConsoleIsMisuse() => Assert.Equal(2, Cli.Run("run", Cli.Guest("hello-pae"), "--console", "serial").Code);

    [Theory]
    [InlineData("hello-pae", "auto", "4.19")]
    [InlineData("hello-pae", "3.1", "3.1")]
    [InlineData("hello", "auto", "3.1")]
    public void TheResolvedProfileIsRecordedAndReplayed(string guest, string asked, string recorded)
    {
        string f = Cli.TempFile(guest + ".rvt");
        var r = Cli.Run("record", Cli.Guest(guest), "-o", f, "--xen", asked);
        Assert.True(r.Code == 0, r.ToString());
        Assert.Contains("ALL PASS hello", r.Stdout);
        var info = Cli.Run("info", f, "--json");
        Assert.Contains($"\"xen\": \"{recorded}\"", info.Stdout.Replace("\":\"", "\": \""));
        var p = Cli.Run("replay", f);
        Assert.True(p.Code == 0, p.ToString());
        Assert.Contains("ALL PASS hello", p.Stdout);
    }
}
