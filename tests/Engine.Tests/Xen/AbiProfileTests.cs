using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Xen;
using static Replayvisor.Engine.Tests.Xen.XenTestGuest;

namespace Replayvisor.Engine.Tests.Xen;

/// <summary>The --xen profile: how it is chosen, what it changes that is not a hypercall answer, and the console view.</summary>
public class AbiProfileTests
{
    private static XenMachine Machine(bool pae, XenAbi? abi, ConsoleView view = ConsoleView.Auto) =>
        new XenTestGuest().Main(a => Shutdown(a)).Machine(pae, new XenMachineOptions { MemoryMiB = 8, Hypervisor = new HypervisorOptions { Abi = abi, Console = view } });

    [Fact]
    public void AutoPicks419ForPaeAnd31ForNonPaeKernels()
    {
        Assert.Equal(XenAbi.Xen4_19, Machine(true, null).Hypervisor.Abi);
        Assert.Equal(XenAbi.Xen3_1, Machine(false, null).Hypervisor.Abi);
        Assert.Equal(XenAbi.Xen3_1, Machine(true, XenAbi.Xen3_1).Hypervisor.Abi);
    }

    [Fact]
    public void ANonPaeKernelIsRefusedOn419()
    {
        var e = Assert.Throws<BootImageException>(() => Machine(false, XenAbi.Xen4_19));
        Assert.Equal(BootError.UnsupportedXenVersion, e.Error);
        Assert.Contains("--xen 3.1", e.Message);
    }

    [Fact]
    public void ProfileNamesRoundTrip()
    {
        Assert.True(XenAbis.TryParse("4.19", out var a) && a == XenAbi.Xen4_19);
        Assert.True(XenAbis.TryParse("3.1", out a) && a == XenAbi.Xen3_1);
        Assert.True(XenAbis.TryParse("auto", out a) && a == null);
        Assert.False(XenAbis.TryParse("4.2", out _));
        Assert.Equal("4.19", XenAbis.Name(XenAbi.Xen4_19));
        Assert.Equal(XenAbi.Xen3_1, XenAbis.Unnamed);
    }

    [Fact]
    public void Cpuid419ShowsDebugExtensionsSysenterAndSyscall()
    {
        CpuidTable.Query(1, 0, false, XenAbi.Xen4_19, out _, out _, out _, out uint edx);
        Assert.NotEqual(0u, edx & CpuidTable.FeatDe);
        Assert.NotEqual(0u, edx & CpuidTable.FeatSep);
        CpuidTable.Query(0x80000001, 0, false, XenAbi.Xen4_19, out _, out _, out _, out edx);
        Assert.Equal(CpuidTable.SyscallBit, edx);
        CpuidTable.Query(0x40000001, 0, false, XenAbi.Xen4_19, out uint eax, out _, out _, out _);
        Assert.Equal(0x00040013u, eax);
        CpuidTable.Query(1, 0, false, XenAbi.Xen3_1, out _, out _, out _, out edx);
        Assert.Equal(0u, edx & (CpuidTable.FeatDe | CpuidTable.FeatSep));
    }

    /// <summary>Only the 4.19 profile adds to the state hash, so states of 3.1 runs (and their golden traces) keep their hashes.</summary>
    [Fact]
    public void TheProfileIsPartOfTheStateHash()
    {
        Assert.NotEqual(Machine(true, XenAbi.Xen3_1).StateHash(), Machine(true, XenAbi.Xen4_19).StateHash());
    }

    [Theory]
    [InlineData(ConsoleView.Auto, "io1 ring1 ring2 ")]
    [InlineData(ConsoleView.Ring, "ring1 ring2 ")]
    [InlineData(ConsoleView.Hypervisor, "io1 io2 ")]
    [InlineData(ConsoleView.Both, "io1 ring1 io2 ring2 ")]
    public void TheConsoleViewChoosesWhatIsShownButEverythingIsObserved(ConsoleView view, string shown)
    {
        var m = Machine(true, null, view);
        var sink = new BufferConsoleSink();
        var seen = new List<string>();
        m.Hypervisor.ConsoleSink = sink;
        m.Hypervisor.Observer = new ConsoleRecorder(seen);
        var hv = m.Hypervisor;
        hv.EmitConsole("io1 "u8, ConsoleSource.Hypervisor);
        hv.EmitConsole("ring1 "u8, ConsoleSource.Ring);
        hv.EmitConsole("io2 "u8, ConsoleSource.Hypervisor); // auto: the ring is in use now, console_io is no longer shown
        hv.EmitConsole("ring2 "u8, ConsoleSource.Ring);
        Assert.Equal(shown, sink.Text);
        Assert.Equal(["io1 ", "ring1 ", "io2 ", "ring2 "], seen);
    }

    private sealed class ConsoleRecorder(List<string> seen) : IXenObserver
    {
        public void OnConsoleOutput(ulong icount, ReadOnlySpan<byte> bytes) => seen.Add(System.Text.Encoding.ASCII.GetString(bytes));
    }
}
