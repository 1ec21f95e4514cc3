namespace Replayvisor.Cli.Tests;

/// <summary>
/// `bench` is four benches in one command (the CPU bench, --guest, --trace, --diff): a second bench, or an option
/// of another bench, is misuse in one line (it was ignored); and `--guest` stops a guest that never ends at an
/// instruction limit (it hung).
/// </summary>
public class BenchOptionTests
{
    private static readonly string Trace = Path.Combine(Cli.RepoRoot, "traces", "hello.rvt");
    private static readonly string OtherTrace = Path.Combine(Cli.RepoRoot, "traces", "multicall.rvt");

    [Theory]
    [InlineData("bench: --guest and --diff are different benches", "--guest", "KERNEL", "--rounds", "1", "--diff", "TRACE", "OTHER")]
    [InlineData("bench: --guest and --trace are different benches", "--guest", "KERNEL", "--rounds", "1", "--trace", "TRACE")]
    [InlineData("bench: --trace and --diff are different benches", "--trace", "TRACE", "--diff", "TRACE", "OTHER")]
    [InlineData("bench: --checkpoint-interval applies only to bench --guest, not to the CPU bench", "--checkpoint-interval", "5", "--instructions", "1000", "--rounds", "1")]
    [InlineData("bench: --checkpoint-interval applies only to bench --guest, not to bench --diff", "--diff", "TRACE", "OTHER", "--checkpoint-interval", "5")]
    [InlineData("bench: --max-instructions applies only to bench --guest, not to bench --trace", "--trace", "TRACE", "--rounds", "1", "--max-instructions", "5")]
    [InlineData("bench: --instructions applies only to the CPU bench", "--guest", "KERNEL", "--rounds", "1", "--instructions", "5")]
    [InlineData("bench: --rounds applies only to the CPU bench, bench --guest or bench --trace, not to bench --diff", "--diff", "TRACE", "OTHER", "--rounds", "2")]
    [InlineData("bench: --rss-baseline applies only to bench --trace, not to bench --guest", "--guest", "KERNEL", "--rounds", "1", "--rss-baseline", "TRACE")]
    [InlineData("bench: --peak-rss applies only to bench --trace, not to the CPU bench", "--peak-rss", "--instructions", "1000", "--rounds", "1")]
    public void AnOptionOfAnotherBenchOrASecondBenchIsMisuse(string message, params string[] args)
    {
        var r = Cli.Run(["bench", .. args.Select(a => a switch { "KERNEL" => Cli.Guest("hello"), "TRACE" => Trace, "OTHER" => OtherTrace, _ => a })]);
        Cli.AssertOneLineError(r, 2, message);
        Assert.Equal("", r.Stdout);
    }

    [Fact]
    public void TheOptionsOfEachBenchAreStillAccepted()
    {
        var cpu = Cli.Run("bench", "--instructions", "100000", "--rounds", "1", "--json");
        Assert.True(cpu.Code == 0, cpu.ToString());
        var guest = Cli.Run("bench", "--guest", Cli.Guest("hello"), "--rounds", "1", "--checkpoint-interval", "100000", "--max-instructions", "50000000", "--json");
        Assert.True(guest.Code == 0, guest.ToString());
    }

    /// <summary>
    /// The CPU bench with too few instructions to time is misuse in one line. Before, `--instructions 0` printed
    /// NaN MIPS and exited 0, and with --json ended in an internal error (exit 70: JSON has no NaN).
    /// </summary>
    [Theory]
    [InlineData("0")]
    [InlineData("9999")]
    public void TooFewInstructionsForTheCpuBenchAreMisuse(string instructions)
    {
        foreach (string[] json in new[] { Array.Empty<string>(), ["--json"] })
        {
            var r = Cli.Run(["bench", "--instructions", instructions, "--rounds", "1", .. json]);
            Cli.AssertOneLineError(r, 2, $"--instructions {instructions}: must be at least 10,000");
            Assert.Equal("", r.Stdout);
        }
        var least = Cli.Run("bench", "--instructions", "10000", "--rounds", "1", "--json");
        Assert.True(least.Code == 0, least.ToString());
        JsonSchemaCheck.AssertValid("bench-cpu.schema.json", least.Stdout);
    }

    /// <summary>hello with `jmp $` (EB FE) at its entry: it never stops, and `bench --guest` used to run it forever.</summary>
    [Fact]
    public void AGuestThatNeverStopsEndsTheGuestBenchAtItsInstructionLimit()
    {
        byte[] elf = File.ReadAllBytes(Cli.Guest("hello"));
        uint entry = BitConverter.ToUInt32(elf, 0x18), phoff = BitConverter.ToUInt32(elf, 0x1c);
        int phentsize = BitConverter.ToUInt16(elf, 0x2a), phnum = BitConverter.ToUInt16(elf, 0x2c);
        int at = -1;
        for (int i = 0; i < phnum && at < 0; i++)
        {
            int ph = (int)phoff + i * phentsize;
            uint type = BitConverter.ToUInt32(elf, ph), offset = BitConverter.ToUInt32(elf, ph + 4), vaddr = BitConverter.ToUInt32(elf, ph + 8), filesz = BitConverter.ToUInt32(elf, ph + 16);
            if (type == 1 && entry >= vaddr && entry - vaddr < filesz) at = (int)(offset + (entry - vaddr));
        }
        Assert.True(at > 0, "no loadable segment holds the entry");
        elf[at] = 0xEB;
        elf[at + 1] = 0xFE;
        string kernel = Cli.TempFile("loop.elf");
        File.WriteAllBytes(kernel, elf);
        var r = Cli.Run("bench", "--guest", kernel, "--rounds", "1", "--max-instructions", "2000000");
        Cli.AssertOneLineError(r, 4, "the guest did not stop within 2,000,000 instructions");
        Assert.Contains("--max-instructions", r.Stderr);
        // Without the option the limit is a finite default, shown in the help.
        var help = Cli.Run("bench", "--help");
        Assert.Matches(@"--max-instructions <N>\s+With --guest: .*\[default: 1000000000\]", help.Stdout.ReplaceLineEndings(" "));
    }
}
