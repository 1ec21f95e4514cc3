using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Xen;
using Replayvisor.Engine.Xen.Mm;
using static Iced.Intel.AssemblerRegisters;
using static Replayvisor.Engine.Tests.Xen.XenTestGuest;

namespace Replayvisor.Engine.Tests.Xen.State;

/// <summary>
/// A guest that keeps the Xen model busy: a trap table, callbacks, VIRQ_TIMER bound, a singleshot
/// timer re-armed from every upcall (absolute deadlines from rdtsc), a short periodic timer,
/// console_io output every 8th tick, and a main loop that works on memory and blocks every 4096
/// iterations (so the clock idles). The test side adds a pinned L1, a GDT from set_gdt, a masked
/// pending IPI and console input waiting for the ring.
/// </summary>
internal static class TickerGuest
{
    public const uint Handler = Entry + 0x800, Failsafe = Entry + 0xA00, Ud2Handler = Entry + 0xB00;
    public const uint Ticks = Scratch, Loops = Scratch + 4, Work = Scratch + 0x400;
    private const int BindVirqArgs = 0x100, TrapTableOffset = 0x300, Dot = 0x200;

    public static XenTestGuest Build()
    {
        var g = new XenTestGuest();
        g.Data[Dot] = (byte)'.';
        g.TrapTable(TrapTableOffset, (6, 0, XenLayout.FlatKernelCs, Ud2Handler), (0x80, 3, XenLayout.FlatKernelCs, Ud2Handler + 0x40));
        g.Main(a =>
        {
            SetCallbacks(a, Handler, Failsafe);
            a.mov(esp, KernelStackTop);
            SetTrapTable(a, TrapTableOffset);
            a.mov(ebx, 1); a.mov(ecx, DataPage + BindVirqArgs); Hcall(a, 32);   // EVTCHNOP_bind_virq(TIMER, vcpu 0) → port 3
            Arm(a, 40_000);
            a.mov(__byte_ptr[SharedInfoVa + 1], 0);                              // unmask events
            var top = a.CreateLabel();
            var noBlock = a.CreateLabel();
            a.Label(ref top);
            a.inc(__dword_ptr[Loops]);
            a.mov(eax, __dword_ptr[Loops]);
            a.mov(edx, eax);
            a.and(edx, 0xFF);
            a.imul(eax, eax, 0x9E3779B1);
            a.xor(__dword_ptr[edx * 4 + Work], eax);
            a.mov(eax, __dword_ptr[Loops]);
            a.and(eax, 0xFFF);
            a.jnz(noBlock);
            a.mov(ebx, 1); Hcall(a, 29);                                         // SCHEDOP_block until the next timer
            a.Label(ref noBlock);
            a.jmp(top);
        });
        g.Code(Handler, a =>
        {
            var skip = a.CreateLabel();
            a.pushad();
            a.inc(__dword_ptr[Ticks]);
            a.mov(__byte_ptr[SharedInfoVa + SharedInfo.VcpuUpcallPending], 0);
            a.mov(__dword_ptr[SharedInfoVa + SharedInfo.VcpuPendingSel], 0);
            a.and(__dword_ptr[SharedInfoVa + SharedInfo.EvtchnPending], unchecked((int)0xFFFFFFF1)); // ports 1-3; a masked IPI on 4 stays pending
            a.mov(eax, __dword_ptr[Ticks]);
            a.and(eax, 7);
            a.jnz(skip);
            a.mov(ebx, 0); a.mov(ecx, 1); a.mov(edx, DataPage + Dot); Hcall(a, 18); // console_io write "."
            a.Label(ref skip);
            Arm(a, 37_000);
            a.popad();
            a.jmp(HcPage + 23 * 32);                                             // HYPERVISOR_iret
        });
        g.Code(Failsafe, a => a.ud2());
        g.Code(Ud2Handler, a => a.ud2());
        return g;
    }

    /// <summary>set_timer_op(rdtsc + delta): the virtual TSC is system time in ns.</summary>
    private static void Arm(Iced.Intel.Assembler a, uint delta)
    {
        a.rdtsc();
        a.add(eax, delta);
        a.adc(edx, 0);
        a.mov(ebx, eax); a.mov(ecx, edx); Hcall(a, 15);
    }

    public static XenMachine Machine(bool pae = true)
    {
        var m = Build().Machine(pae, new XenMachineOptions
        {
            MemoryMiB = 8,
            Hypervisor = new HypervisorOptions { PeriodicTimerNs = 250_000, TimeRefreshNs = 500_000 },
        });
        MapSharedInfo(m);
        return m;
    }

    /// <summary>A domain frame no boot mapping reaches.</summary>
    public static uint FreeMfn(XenMachine m, int i) => m.Domain.P2m[(int)m.Domain.Virtual.MappedPages + i];

    /// <summary>Model state the guest does not set up itself: a pinned L1, a GDT, a masked pending IPI, queued console input.</summary>
    public static void Decorate(XenMachine m)
    {
        var hv = m.Hypervisor;
        // Let the guest set itself up first (VIRQ_TIMER takes port 3, the first free one).
        Assert.Equal(MachineExitKind.InstructionLimit, m.Run(100).Kind);
        Assert.Equal(3u, hv.Vcpu.VirqPort[Hypervisor.VirqTimer]);
        uint args = Scratch + 0x800;
        // MMUEXT_PIN_L1_TABLE on a free (zeroed, unmapped) frame.
        Write32(m, args, MmuextCmd.PinL1Table); Write32(m, args + 4, FreeMfn(m, 0)); Write32(m, args + 8, 0);
        Assert.Equal(0, hv.Call(26, new HypercallArgs(args, 1, 0, DomId.Self, 0, 0)));
        Assert.True(m.Mm.Frames.IsPinned(FreeMfn(m, 0)));
        // set_gdt({free frame}, 512 entries).
        Write32(m, args, FreeMfn(m, 1));
        Assert.Equal(0, hv.Call(2, new HypercallArgs(args, 512, 0, 0, 0, 0)));
        Assert.Equal(512u, m.Mm.GdtEntries);
        // EVTCHNOP_bind_ipi(vcpu 0), masked, then sent: pending but never delivered.
        Write32(m, args, 0); Write32(m, args + 4, 0);
        Assert.Equal(0, hv.Call(32, new HypercallArgs(7, args, 0, 0, 0, 0)));
        uint port = Read32(m, args + 4);
        Assert.Equal(4u, port);
        ulong maskWord = ((ulong)hv.SharedInfo.Mfn << 12) + SharedInfo.EvtchnMask + (port >> 5) * 4;
        m.Cpu.Memory.Write32(maskWord, m.Cpu.Memory.Read32(maskWord) | (1u << (int)(port & 31)));
        Write32(m, args, port);
        Assert.Equal(0, hv.Call(32, new HypercallArgs(4, args, 0, 0, 0, 0)));
        Assert.True(hv.SharedInfo.TestPending(port));
        // More console input than the 1 KiB ring holds: the rest waits in the backend's queue.
        m.PushConsoleInput(new byte[1500]);
        Assert.True(hv.Console.PendingRingInput > 0);
    }
}

/// <summary>Records every observer callback with its instruction count, as text.</summary>
internal sealed class EventLog : IXenObserver
{
    public List<string> Lines { get; } = [];

    public void OnHypercall(ulong icount, int number, in HypercallArgs args, long result, ReadOnlySpan<MulticallResult> entries,
        HypercallOutput output) =>
        Lines.Add($"{icount} hc {number} {args.A1:x} {args.A2:x} {args.A3:x} = {result} w{output.Writes.Count} d{output.Digest:x} s{output.Site:x}");
    public void OnUpcall(ulong icount, int vcpu, ReadOnlySpan<uint> ports) => Lines.Add($"{icount} upcall {vcpu} [{string.Join(',', ports.ToArray())}]");
    public void OnException(ulong icount, int vector, uint errorCode, uint cr2, uint eip) => Lines.Add($"{icount} exc {vector} {errorCode:x} {cr2:x} {eip:x}");
    public void OnFailsafe(ulong icount, uint eip, string cause) => Lines.Add($"{icount} failsafe {eip:x} {cause}");
    public void OnConsoleOutput(ulong icount, ReadOnlySpan<byte> bytes) => Lines.Add($"{icount} out {Convert.ToHexString(bytes)}");
    public void OnConsoleInput(ulong icount, ReadOnlySpan<byte> bytes) => Lines.Add($"{icount} in {bytes.Length}");
    public void OnShutdown(ulong icount, ShutdownKind kind, string detail) => Lines.Add($"{icount} shutdown {kind} {detail}");
}
