using System.Text.RegularExpressions;

namespace Replayvisor.Cli.Tests;

/// <summary>
/// A thread's memory is read through its own vCPU's page tables (docs/gdbserver.md "vCPUs as threads"):
/// in the smp guest vCPU 1 ends on a clone of the domain's tables with a private page at 0x40000000
/// (guests/smp: PRIVATE_MAGIC, read in read_private) that vCPU 0 does not map. Real gdb, `thread N` then `x`.
/// </summary>
public class GdbVcpuMemoryTests
{
    [Fact]
    public void EachThreadReadsMemoryThroughItsOwnVcpusPageTables()
    {
        // Stopped where vCPU 1 reads its page, on its own tables; vCPU 0 is parked on the domain's.
        var s = GdbHarness.Run(SmpRecording.ThreeVcpus, "break read_private", "continue",
            "thread 2", "x/wx 0x40000000", "thread 1", "x/wx 0x40000000", "thread 2", "x/wx 0x40000000");
        Assert.Contains("Thread 2 hit Breakpoint 1, ", s.Gdb);
        // gdb prints "0x40000000:\t" and then the value, or nothing (its error goes to stderr, merged after).
        var reads = Regex.Matches(s.Gdb, @"\[Switching to thread (\d) \(Thread \d\)\]\n#0 [^\n]*\n0x40000000:\t(0x[0-9a-f]{8})?")
            .Select(m => (Thread: m.Groups[1].Value, Value: m.Groups[2].Value)).ToArray();
        Assert.True(reads.Length == 3, s.Gdb);
        Assert.Equal(("2", "0x1a2b3c4d"), reads[0]); // vCPU 1 (running): its private page
        Assert.Equal(("1", ""), reads[1]); // vCPU 0 (parked): not mapped
        Assert.Equal(("2", "0x1a2b3c4d"), reads[2]); // and vCPU 1 again after the other
        Assert.Single(Regex.Matches(s.Gdb, "Cannot access memory at address 0x40000000"));
        Assert.Equal(0, s.Server.Code);
    }
}
