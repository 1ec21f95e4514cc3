using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Xen;
using static Iced.Intel.AssemblerRegisters;
using static Replayvisor.Engine.Tests.Xen.XenTestGuest;

namespace Replayvisor.Engine.Tests.Xen;

/// <summary>Whole guests: hypercalls through the hypercall page, console output, shutdown reasons.</summary>
public class GuestRunTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ConsoleWriteThenPowerOff(bool pae)
    {
        var g = new XenTestGuest();
        "hello, xen\n"u8.CopyTo(g.Data);
        g.Main(a =>
        {
            a.mov(ebx, 0); a.mov(ecx, 11); a.mov(edx, DataPage);
            Hcall(a, 18);
            a.mov(__dword_ptr[Scratch], eax);
            Shutdown(a, 0);
        });
        var m = g.Machine(pae);
        var sink = new BufferConsoleSink();
        m.Hypervisor.ConsoleSink = sink;
        var r = Run(m);
        Assert.Equal(MachineExitKind.PoweredOff, r.Kind);
        Assert.Equal("hello, xen\n", sink.Text);
        Assert.Equal(0u, Read32(m, Scratch));
        Assert.Equal(1, m.HypercallStats["console_io"]);
        Assert.Equal(1, m.HypercallStats["sched_op_compat"]);
    }

    [Theory]
    [InlineData(0u, MachineExitKind.PoweredOff)]
    [InlineData(1u, MachineExitKind.Rebooted)]
    [InlineData(2u, MachineExitKind.Suspended)]
    [InlineData(3u, MachineExitKind.Crashed)]
    public void ShutdownReasonsViaSchedOp(uint reason, MachineExitKind expected)
    {
        var g = new XenTestGuest();
        BitConverter.TryWriteBytes(g.Data.AsSpan(0), reason);
        g.Main(a =>
        {
            a.mov(ebx, 2); a.mov(ecx, DataPage);
            Hcall(a, 29);
            a.ud2();
        });
        var m = g.Machine();
        var r = Run(m);
        Assert.Equal(expected, r.Kind);
        Assert.Contains("guest requested shutdown", r.Detail);
    }

    [Fact]
    public void XenVersionAndUnknownHypercalls()
    {
        var g = new XenTestGuest();
        g.Main(a =>
        {
            a.mov(ebx, 0); a.mov(ecx, 0);
            Hcall(a, 17);
            a.mov(__dword_ptr[Scratch], eax);
            Hcall(a, 11);                        // unused slot
            a.mov(__dword_ptr[Scratch + 4], eax);
            a.mov(eax, 100); a.@int(0x82);       // number ≥ 64, inline
            a.mov(__dword_ptr[Scratch + 8], eax);
            a.mov(ebx, 0xDEAD); a.mov(eax, 25); a.@int(0x82); // set_segment_base: x86_64 only
            a.mov(__dword_ptr[Scratch + 12], eax);
            a.mov(__dword_ptr[Scratch + 16], ebx); // argument registers come back unchanged
            Shutdown(a);
        });
        var m = g.Machine();
        Assert.Equal(MachineExitKind.PoweredOff, Run(m).Kind);
        Assert.Equal(0x00040013u, Read32(m, Scratch)); // a PAE kernel runs on the 4.19 profile by default
        Assert.Equal(unchecked((uint)-Errno.ENOSYS), Read32(m, Scratch + 4));
        Assert.Equal(unchecked((uint)-Errno.ENOSYS), Read32(m, Scratch + 8));
        Assert.Equal(unchecked((uint)-Errno.ENOSYS), Read32(m, Scratch + 12));
        Assert.Equal(0xDEADu, Read32(m, Scratch + 16));
    }

    [Fact]
    public void UnhandledExceptionCrashesTheDomain()
    {
        var g = new XenTestGuest();
        g.Main(a => a.ud2());
        var m = g.Machine();
        var r = Run(m);
        Assert.Equal(MachineExitKind.Crashed, r.Kind);
        Assert.Contains("null code selector", r.Detail);
        Assert.Equal(ShutdownKind.DomainCrash, m.Hypervisor.Shutdown);
        Assert.Equal(1, m.ExceptionStats[6]);
    }

    [Fact]
    public void InstructionLimitStopsExactly()
    {
        var g = new XenTestGuest();
        g.Main(a => { var l = a.CreateLabel(); a.Label(ref l); a.inc(eax); a.jmp(l); });
        var m = g.Machine();
        var r = m.Run(12345);
        Assert.Equal(MachineExitKind.InstructionLimit, r.Kind);
        Assert.Equal(12345ul, m.Icount);
    }

    [Fact]
    public void InitialStateIsRing1WithFlatSelectors()
    {
        var g = new XenTestGuest();
        g.Main(a => Shutdown(a));
        var m = g.Machine();
        var c = m.Cpu;
        Assert.Equal(1, c.Cpl);
        Assert.Equal(XenLayout.FlatKernelCs, c.Segs[Replayvisor.Engine.Cpu.Seg.CS].Selector);
        Assert.Equal(XenLayout.FlatKernelSs, c.Segs[Replayvisor.Engine.Cpu.Seg.SS].Selector);
        Assert.Equal(m.Domain.StartInfoVa, c.Esi);
        Assert.Equal(Entry, c.Eip);
        Assert.Equal(1, m.Hypervisor.SharedInfo.UpcallMask(0));
    }
}
