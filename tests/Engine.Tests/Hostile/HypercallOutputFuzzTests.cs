using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Xen;

namespace Replayvisor.Engine.Tests.Hostile;

/// <summary>
/// The hypercall table's declared output buffers against the random-hypercall guest: every byte
/// the model copies to the guest must fall inside a buffer the table declares for that call
/// (rr checks its syscall table the same way), and watching the outputs must not change the run.
/// </summary>
public class HypercallOutputFuzzTests
{
    private sealed class Outputs : IXenObserver
    {
        public long Captured;
        public void OnHypercall(ulong icount, int number, in HypercallArgs args, long result, ReadOnlySpan<MulticallResult> entries,
            HypercallOutput output) => Captured += output.Writes.Count;
    }

    [Fact]
    public void EveryWriteOfRandomHypercallsFallsInsideADeclaredBuffer()
    {
        var undeclared = new List<string>();
        long captured = 0;
        int n = HostileRun.Iterations(8);
        for (int i = 0; i < n; i++)
        {
            var c = RandomHypercallTests.Case(7000 + i, pae: i % 2 == 0);
            var m = new XenMachine(c.Image, new XenMachineOptions { MemoryMiB = 8 });
            c.Prepare?.Invoke(m);
            var outputs = new Outputs();
            m.Hypervisor.Observer = outputs;
            m.Hypervisor.UndeclaredWrite = (nr, w) => undeclared.Add($"{c.Name}: {HypercallTableName(nr)} wrote {w.Bytes.Length} bytes at 0x{w.Address:x8}");
            HostileRun.Drive(m, m.Icount + c.Budget);
            captured += outputs.Captured;
        }
        Assert.Empty(undeclared);
        Assert.True(captured > 0, "the random hypercalls wrote nothing: the check above proved nothing");
    }

    [Fact]
    public void CapturingOutputsDoesNotChangeTheRun()
    {
        for (int i = 0; i < 3; i++)
        {
            var c = RandomHypercallTests.Case(7100 + i, pae: i != 1);
            var plain = Run(c, watch: false);
            var watched = Run(c, watch: true);
            Assert.Equal(plain.Icount, watched.Icount);
            Assert.Equal(plain.Hash, watched.Hash);
        }
    }

    private static (ulong Icount, byte[] Hash) Run(HostileCase c, bool watch)
    {
        var m = new XenMachine(c.Image, new XenMachineOptions { MemoryMiB = 8 });
        c.Prepare?.Invoke(m);
        if (watch) { m.Hypervisor.Observer = new Outputs(); m.Hypervisor.UndeclaredWrite = (_, _) => { }; }
        HostileRun.Drive(m, m.Icount + c.Budget);
        return (m.Icount, m.StateHash());
    }

    private static string HypercallTableName(int nr) => Replayvisor.Engine.Xen.Hypercalls.HypercallTable.NameOf(nr);
}
