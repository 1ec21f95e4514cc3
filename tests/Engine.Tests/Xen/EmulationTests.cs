using System.Text;
using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Xen;
using static Iced.Intel.AssemblerRegisters;
using static Replayvisor.Engine.Tests.Xen.XenTestGuest;

namespace Replayvisor.Engine.Tests.Xen;

/// <summary>Privileged-op emulation (§12), forced-emulation cpuid (§8.3), lazy FPU, console/xenstore backends, observer.</summary>
public class EmulationTests
{
    private const uint H1 = Entry + 0x800;
    private const ushort KCs = XenLayout.FlatKernelCs;

    [Fact]
    public void InWithoutIoplBouncesGp()
    {
        var g = new XenTestGuest().TrapTable(0, (13, 0, KCs, H1));
        int prefix = Assemble(a => { SetTrapTable(a, 0); a.mov(esp, KernelStackTop); }, Entry).Length;
        g.Main(a => { SetTrapTable(a, 0); a.mov(esp, KernelStackTop); a.@in(al, 0x80); });
        g.Code(H1, a => DumpStackAndStop(a, 2, 0, 1));
        var m = g.Machine();
        Assert.Equal(MachineExitKind.Rebooted, Run(m).Kind);
        Assert.Equal(0u, Read32(m, Scratch));
        Assert.Equal(Entry + (uint)prefix, Read32(m, Scratch + 4));
    }

    [Fact]
    public void PrivilegedInstructionsAreEmulatedAtRing1()
    {
        var g = new XenTestGuest().TrapTable(0, (13, 0, KCs, H1));
        g.Data[0x100] = 1; // physdev_set_iopl {1}
        g.Main(a =>
        {
            SetTrapTable(a, 0);
            a.mov(esp, KernelStackTop);
            a.mov(ebx, 6); a.mov(ecx, DataPage + 0x100); Hcall(a, 33);
            a.mov(eax, 0); a.@in(al, 0x80); a.mov(__dword_ptr[Scratch], eax);
            a.mov(dx, 0x1F0); a.mov(eax, 0x12345678); a.@in(ax, dx); a.mov(__dword_ptr[Scratch + 4], eax);
            a.cli(); a.sti();
            a.mov(eax, cr0); a.mov(__dword_ptr[Scratch + 8], eax);
            a.clts();
            a.mov(eax, cr4); a.mov(__dword_ptr[Scratch + 12], eax);
            a.mov(eax, cr3); a.mov(__dword_ptr[Scratch + 16], eax);
            a.mov(ecx, 0x1B); a.rdmsr(); a.mov(__dword_ptr[Scratch + 20], eax);
            a.mov(ecx, 0x40000000); a.mov(eax, __dword_ptr[Scratch + 0x200]); a.mov(edx, 0); a.wrmsr();
            a.mov(eax, 1); a.mov(dr7, eax);
            a.mov(eax, dr7); a.mov(__dword_ptr[Scratch + 24], eax);
            a.mov(eax, 0xABCD); a.mov(cr2, eax);
            a.mov(eax, cr0); a.and(eax, 0x7FFFFFFF); a.mov(cr0, eax); // clearing PG: refused
        });
        g.Code(H1, a => DumpStackAndStop(a, 2, 8, 1));
        var m = g.Machine();
        uint page = Scratch + 0x2000;
        uint mfn = m.Domain.P2m[(int)((page - VirtBase) >> 12)];
        Write32(m, Scratch + 0x200, mfn << 12);
        var r = Run(m);
        Assert.True(r.Kind == MachineExitKind.Rebooted, r.ToString());
        Assert.Equal(0xFFu, Read32(m, Scratch));                      // no real port: all ones
        Assert.Equal(0x1234FFFFu, Read32(m, Scratch + 4));
        Assert.Equal(m.Cpu.Cr0 & ~Cr0Bits.TS, Read32(m, Scratch + 8));
        Assert.Equal(m.Cpu.Cr4 & ~(Cr4Bits.PGE | Cr4Bits.PSE), Read32(m, Scratch + 12));
        Assert.Equal(XenLayout.PackCr3(m.Mm.CurrentBaseMfn), Read32(m, Scratch + 16));
        Assert.Equal(0xFEE00900u, Read32(m, Scratch + 20));
        Assert.Equal(0x401u, Read32(m, Scratch + 24));
        Assert.Equal(0xABCDu, m.Hypervisor.SharedInfo.Cr2(0));
        Assert.Equal(0u, Read32(m, Scratch + 32));                     // #GP(0) from mov cr0
        Assert.Equal(HypercallPage.Stub(5), ReadBytes(m, page + 5 * 32, 8));
        Assert.Equal(HypercallPage.Stub(23), ReadBytes(m, page + 23 * 32, 8));
    }

    private static byte[] ReadBytes(XenMachine m, uint va, int n)
    {
        var b = new byte[n];
        Assert.True(m.Guest.TryRead(va, b));
        return b;
    }

    [Fact]
    public void ForcedEmulationCpuidIsFilteredAndSkipsSevenBytes()
    {
        var g = new XenTestGuest();
        byte[] forced = [0x0F, 0x0B, 0x78, 0x65, 0x6E, 0x0F, 0xA2];
        g.Main(a =>
        {
            a.mov(eax, 0x40000000); a.db(forced);
            a.mov(__dword_ptr[Scratch], ebx); a.mov(__dword_ptr[Scratch + 4], ecx); a.mov(__dword_ptr[Scratch + 8], edx);
            a.mov(__dword_ptr[Scratch + 12], eax);
            a.mov(eax, 1); a.db(forced); a.mov(__dword_ptr[Scratch + 16], edx);
            a.mov(eax, 1); a.cpuid(); a.mov(__dword_ptr[Scratch + 20], edx);
            a.mov(eax, 0x40000002); a.db(forced); a.mov(__dword_ptr[Scratch + 24], eax); a.mov(__dword_ptr[Scratch + 28], ebx);
            Shutdown(a);
        });
        var m = g.Machine(options: new XenMachineOptions { MemoryMiB = 8, Hypervisor = new HypervisorOptions { Abi = XenAbi.Xen3_1 } });
        Assert.Equal(MachineExitKind.PoweredOff, Run(m).Kind);
        var sig = new byte[12];
        Assert.True(m.Guest.TryRead(Scratch, sig));
        Assert.Equal("XenVMMXenVMM", Encoding.ASCII.GetString(sig));
        Assert.Equal(0x40000002u, Read32(m, Scratch + 12));
        uint hidden = CpuidTable.FeatVme | CpuidTable.FeatDe | CpuidTable.FeatPse | CpuidTable.FeatPge | CpuidTable.FeatSep | CpuidTable.FeatMtrr;
        Assert.Equal(0u, Read32(m, Scratch + 16) & hidden);
        Assert.NotEqual(0u, Read32(m, Scratch + 16) & CpuidTable.FeatPae);
        Assert.Equal(Read32(m, Scratch + 16), Read32(m, Scratch + 20));
        Assert.Equal(1u, Read32(m, Scratch + 24));
        Assert.Equal(0x40000000u, Read32(m, Scratch + 28));
    }

    [Fact]
    public void PlainUd2IsBounced()
    {
        var g = new XenTestGuest().TrapTable(0, (6, 0, KCs, H1));
        g.Main(a => { SetTrapTable(a, 0); a.mov(esp, KernelStackTop); a.db([0x0F, 0x0B, 0x78, 0x65, 0x6E, 0x90]); });
        g.Code(H1, a => DumpStackAndStop(a, 1));
        Assert.Equal(MachineExitKind.PoweredOff, Run(g.Machine()).Kind);
    }

    [Fact]
    public void DeviceNotAvailableBouncesOnlyWithVirtualTs()
    {
        var m = new XenTestGuest().Main(a => Shutdown(a)).Machine();
        var hv = m.Hypervisor;
        hv.Vcpu.Traps[7] = new TrapInfo { Cs = KCs, Address = H1 };
        m.Cpu.Esp = KernelStackTop;
        var nm = new CpuEvent(Vectors.NM, EventKind.Fault, false, 0, Entry, 0);
        hv.Deliver(m.Cpu, nm);                          // TS clear: Xen restores the FPU itself
        Assert.Equal(Entry, m.Cpu.Eip);
        Assert.Equal(0, hv.Call(5, new HypercallArgs(1, 0, 0, 0, 0, 0)));
        hv.Deliver(m.Cpu, nm);
        Assert.Equal(H1, m.Cpu.Eip);
        Assert.False(hv.Vcpu.VirtualTs);                // cleared on delivery
        Assert.Equal(0u, m.Cpu.Cr0 & Cr0Bits.TS);
        Assert.Equal(KernelStackTop - 12, m.Cpu.Esp);
    }

    [Fact]
    public void PitChannel2CountsDown()
    {
        var pit = new PitChannel2();
        pit.Write(0x61, 1, 0);
        pit.Write(0x43, 0xB0, 0);
        pit.Write(0x42, 0x10, 0);
        pit.Write(0x42, 0x00, 0);       // 16 ticks ≈ 13.4 µs
        Assert.Equal(0, pit.Read(0x61, 1_000) & 0x20);
        Assert.Equal(0x20, pit.Read(0x61, 20_000) & 0x20);
    }

    [Fact]
    public void ConsoleRingOutputAndInput()
    {
        var m = new XenTestGuest().Main(a => Shutdown(a)).Machine();
        var sink = new BufferConsoleSink();
        m.Hypervisor.ConsoleSink = sink;
        uint con = m.Domain.Virtual.Console;
        Write(m, con + 0x400, "ring!"u8);
        Write32(m, con + 0xC0C, 5);
        Write32(m, Scratch, 2);
        Assert.Equal(0, m.Hypervisor.Call(32, new HypercallArgs(4, Scratch, 0, 0, 0, 0)));
        Assert.Equal("ring!", sink.Text);
        Assert.Equal(5u, Read32(m, con + 0xC08));
        Assert.True(m.Hypervisor.SharedInfo.TestPending(2));
        m.PushConsoleInput("in"u8);
        Assert.Equal(2u, Read32(m, con + 0xC04));
        Assert.Equal((uint)('i' | 'n' << 8), Read32(m, con) & 0xFFFF);
    }

    /// <summary>The store ring is a byte stream: a request split over two notifies is answered once whole (docs/xen-model.md "xenstore").</summary>
    [Fact]
    public void XenstoreRequestsAreAnsweredByTheModelsXenstored()
    {
        var m = new XenTestGuest().Main(a => Shutdown(a)).Machine();
        uint st = m.Domain.Virtual.Xenstore;
        Write32(m, st, 2); Write32(m, st + 4, 7); Write32(m, st + 8, 0); Write32(m, st + 12, 5);
        Write32(m, st + 0x804, 16);                                  // the header alone
        Write32(m, Scratch, 1);
        Assert.Equal(0, m.Hypervisor.Call(32, new HypercallArgs(4, Scratch, 0, 0, 0, 0)));
        Assert.Equal(16u, Read32(m, st + 0x800));                    // taken off the ring
        Assert.Equal(0u, Read32(m, st + 0x80C));                     // no reply yet
        Write(m, st + 16, "name\0"u8);
        Write32(m, st + 0x804, 21);
        Assert.Equal(0, m.Hypervisor.Call(32, new HypercallArgs(4, Scratch, 0, 0, 0, 0)));
        Assert.Equal(21u, Read32(m, st + 0x800));
        Assert.Equal(2u, Read32(m, st + 0x400));                     // XS_READ
        Assert.Equal(7u, Read32(m, st + 0x404));                     // req_id echoed
        Assert.Equal(17u, Read32(m, st + 0x40C));
        Assert.Equal("replayvisor-guest", Encoding.ASCII.GetString(ReadBytes(m, st + 0x410, 17)));
        Assert.Equal(33u, Read32(m, st + 0x80C));
        Assert.True(m.Hypervisor.SharedInfo.TestPending(1));
    }

    [Fact]
    public void ObserverSeesHypercallsWithGuestWritesAndShutdown()
    {
        var g = new XenTestGuest();
        g.Main(a =>
        {
            a.mov(ebx, 1); a.mov(ecx, Scratch); Hcall(a, 17);
            Shutdown(a, 1);
        });
        var m = g.Machine();
        var obs = new RecordingObserver();
        m.Hypervisor.Observer = obs;
        Assert.Equal(MachineExitKind.Rebooted, Run(m).Kind);
        Assert.Equal([17, 6], obs.Calls.Select(c => c.Nr));
        var writes = obs.Calls[0].Writes;
        Assert.Single(writes);
        Assert.Equal(Scratch, writes[0].Address);
        Assert.Equal(16, writes[0].Bytes.Length);
        Assert.Equal(ShutdownKind.Reboot, obs.Shutdown);
        Assert.True(obs.Calls[0].Icount > 0);
    }

    private sealed class RecordingObserver : IXenObserver
    {
        public readonly List<(ulong Icount, int Nr, long Result, IReadOnlyList<GuestWriteRecord> Writes)> Calls = [];
        public ShutdownKind Shutdown = ShutdownKind.None;

        public void OnHypercall(ulong icount, int number, in HypercallArgs args, long result, ReadOnlySpan<MulticallResult> entries,
            HypercallOutput output) => Calls.Add((icount, number, result, output.Writes));

        public void OnShutdown(ulong icount, ShutdownKind kind, string detail) => Shutdown = kind;
    }
}
