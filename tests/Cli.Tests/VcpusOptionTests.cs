namespace Replayvisor.Cli.Tests;

/// <summary>--vcpus on run and record: the count in the trace header, replayed; a count not modelled is misuse.</summary>
public class VcpusOptionTests
{
    [Theory]
    [InlineData("0")]
    [InlineData("33")]
    public void ACountOutsideOneTo32IsMisuse(string n) =>
        Cli.AssertOneLineError(Cli.Run("run", Cli.Guest("hello"), "--vcpus", n), 2, "--vcpus " + n);

    [Fact]
    public void TheCountIsRecordedAndReplayed()
    {
        string f = Cli.TempFile("smp.rvt");
        var r = Cli.Run("record", Cli.Guest("smp-pae"), "-o", f, "--vcpus", "3", "--clock", "host");
        Assert.True(r.Code == 0, r.ToString());
        Assert.Contains("smp: 3 vCPUs", r.Stdout);
        Assert.Contains("ALL PASS smp", r.Stdout);
        Assert.Contains("\"vcpus\": \"3\"", Cli.Run("info", f, "--json").Stdout.Replace("\":\"", "\": \""));
        Assert.Contains("[vcpu 2]", Cli.Run("dump", f).Stdout);
        var p = Cli.Run("replay", f);
        Assert.True(p.Code == 0, p.ToString());
        Assert.Contains("smp: 3 vCPUs", p.Stdout);
    }
}
