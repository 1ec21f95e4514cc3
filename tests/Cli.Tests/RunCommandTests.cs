namespace Replayvisor.Cli.Tests;

public class RunCommandTests
{
    [Fact]
    public void AGuestThatPowersOffExitsZero()
    {
        var r = Cli.Run("run", Cli.Guest("hello"));
        Assert.True(r.Code == 0, r.ToString());
        Assert.Contains("ALL PASS hello", r.Stdout);
        Assert.Equal("", r.Stderr);
    }

    [Fact]
    public void StatsGoToStderr()
    {
        var r = Cli.Run("run", Cli.Guest("hello-pae"), "--stats");
        Assert.Equal(0, r.Code);
        Assert.Contains("instructions retired:", r.Stderr);
        Assert.Contains("MIPS", r.Stderr);
        Assert.Contains("console_io", r.Stderr);
        Assert.DoesNotContain("instructions retired", r.Stdout);
    }

    [Fact]
    public void ACrashingGuestExitsThree() => Cli.AssertOneLineError(Cli.Run("run", Cli.Guest("crash")), 3, "crashed");

    [Fact]
    public void TheInstructionLimitExitsFour() =>
        Cli.AssertOneLineError(Cli.Run("run", Cli.Guest("sched"), "--max-instructions", "100000"), 4, "instruction limit");

    [Fact]
    public void AnUnsupportedInstructionExitsSevenWithItsDisassembly() =>
        Cli.AssertOneLineError(Cli.Run("run", Cli.Guest("fpu")), 7, "unsupported instruction fld1 at e019:");

    [Fact]
    public void ConsoleInputReachesTheGuest()
    {
        var r = Cli.RunWithInput("ping\nquit\n", "run", Cli.Guest("echo"));
        Assert.True(r.Code == 0, r.ToString());
        Assert.Contains("ping", r.Stdout);
        Assert.Contains("ALL PASS echo", r.Stdout);
    }

    [Fact]
    public void AMissingKernelExitsSix() => Cli.AssertOneLineError(Cli.Run("run", "/no/such/kernel.elf"), 6, "no such file");

    [Fact]
    public void ANonElfKernelExitsFive()
    {
        string f = Cli.TempFile("notes.txt");
        File.WriteAllText(f, "this is not a kernel\n");
        Cli.AssertOneLineError(Cli.Run("run", f), 5, "not an ELF file");
    }

    [Fact]
    public void A64BitElfExitsFive()
    {
        string self = "/bin/ls";
        Cli.AssertOneLineError(Cli.Run("run", self), 5, "ELF class 64");
    }

    [Fact]
    public void AnElfWithoutXenNotesExitsFive()
    {
        // A 32-bit ELF with its notes renamed away: the guest image with "Xen" note names altered.
        byte[] image = File.ReadAllBytes(Cli.Guest("hello"));
        var s = System.Text.Encoding.Latin1.GetString(image).Replace("Xen\0", "Nex\0");
        string f = Cli.TempFile("nonotes.elf");
        File.WriteAllBytes(f, System.Text.Encoding.Latin1.GetBytes(s));
        Cli.AssertOneLineError(Cli.Run("run", f), 5, "Xen");
    }

    /// <summary>
    /// A kernel that record refuses leaves the file system as it was: no trace file where there was
    /// none, and an existing file at the output path untouched (not truncated, not deleted).
    /// </summary>
    [Fact]
    public void ARefusedKernelLeavesNoTraceBehindAndAnExistingFileUntouched()
    {
        byte[] image = File.ReadAllBytes(Cli.Guest("hello"));
        string bad = Cli.TempFile("truncated.elf");
        File.WriteAllBytes(bad, image.AsSpan(0, 100).ToArray()); // the program headers run past the end
        string fresh = Cli.TempFile("fresh.rvt");
        Cli.AssertOneLineError(Cli.Run("record", bad, "-o", fresh), 5, "past the end");
        Assert.False(File.Exists(fresh), "a refused kernel left a trace file behind");

        string existing = Cli.TempFile("existing.rvt");
        File.WriteAllText(existing, "an earlier recording\n");
        Cli.AssertOneLineError(Cli.Run("record", bad, "-o", existing), 5, "past the end");
        Assert.True(File.Exists(existing), "a refused kernel deleted the file at the output path");
        Assert.Equal("an earlier recording\n", File.ReadAllText(existing));
    }

    [Fact]
    public void MisuseExitsTwo()
    {
        Cli.AssertOneLineError(Cli.Run(), 2, "command");
        Cli.AssertOneLineError(Cli.Run("frobnicate"), 2, "frobnicate");
        Cli.AssertOneLineError(Cli.Run("run"), 2, "Required argument missing");
        Cli.AssertOneLineError(Cli.Run("run", Cli.Guest("hello"), "--memory", "lots"), 2, "lots");
        Cli.AssertOneLineError(Cli.Run("run", Cli.Guest("hello"), "--memory", "1"), 2, "--memory");
        Cli.AssertOneLineError(Cli.Run("record", Cli.Guest("hello")), 2, "--output");
        Cli.AssertOneLineError(Cli.Run("record", Cli.Guest("hello"), "-o", Cli.TempFile("x.rvt"), "--clock", "sundial"), 2, "sundial");
    }
}
