using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Xen;
using static Iced.Intel.AssemblerRegisters;
using static Replayvisor.Engine.Tests.Xen.XenTestGuest;

namespace Replayvisor.Engine.Tests.Xen;

/// <summary>Bounce frames (§8.2), the trap-table DPL rule (§8.3), HYPERVISOR_iret and failsafe (§8.4, §8.5), upcalls (§9).</summary>
public class DeliveryTests
{
    private const uint H1 = Entry + 0x800, H2 = Entry + 0x900, H3 = Entry + 0xA00, H4 = Entry + 0xB00;
    private const ushort KCs = XenLayout.FlatKernelCs;

    [Fact]
    public void ExceptionFromRing1UsesCurrentStackWithSavedMaskAndVirtualIf()
    {
        var g = new XenTestGuest().TrapTable(0, (6, 0, KCs, H1));
        uint ud2At = 0;
        g.Main(a =>
        {
            SetTrapTable(a, 0);
            a.mov(esp, KernelStackTop - 64);
            a.mov(__dword_ptr[Scratch + 0x104], esp);
            a.ud2();
        });
        g.Code(H1, a => DumpStackAndStop(a, 3));
        var m = g.Machine();
        ud2At = Entry + (uint)XenTestGuest.Assemble(a => { SetTrapTable(a, 0); a.mov(esp, KernelStackTop - 64); a.mov(__dword_ptr[Scratch + 0x104], esp); }, Entry).Length;
        Assert.Equal(MachineExitKind.PoweredOff, Run(m).Kind);
        Assert.Equal(ud2At, Read32(m, Scratch));                    // EIP of the faulting ud2, no error code
        Assert.Equal(KCs | (1u << 16), Read32(m, Scratch + 4));     // CS with saved_upcall_mask = 1 in bits 16-23
        Assert.Equal(0u, Read32(m, Scratch + 8) & Fl.IF);           // virtual IF = !mask = 0
        Assert.Equal(Read32(m, Scratch + 0x104) - 12, Read32(m, Scratch + 0x100)); // same stack, 3 dwords
        Assert.Equal(1, m.Hypervisor.SharedInfo.UpcallMask(0));
    }

    [Theory]
    [InlineData(false, 0u)]
    [InlineData(true, 2u)]
    public void PageFaultFromRing1PushesErrorCodeAndSetsCr2(bool write, uint expectedError)
    {
        var g = new XenTestGuest().TrapTable(0, (14, 4, KCs, H1));
        g.Main(a =>
        {
            SetTrapTable(a, 0);
            a.mov(esp, KernelStackTop);
            if (write) a.mov(__dword_ptr[0x10000010], eax); else a.mov(eax, __dword_ptr[0x10000010]);
        });
        g.Code(H1, a => DumpStackAndStop(a, 4));
        var m = g.Machine();
        MapSharedInfo(m);
        Assert.Equal(MachineExitKind.PoweredOff, Run(m).Kind);
        Assert.Equal(expectedError, Read32(m, Scratch));
        Assert.Equal(KCs | (1u << 16), Read32(m, Scratch + 8));
        Assert.Equal(0x10000010u, m.Hypervisor.SharedInfo.Cr2(0));
        Assert.Equal(0x10000010u, Read32(m, SharedInfoVa + 8)); // vcpu_info.arch.cr2 as the guest sees it
        Assert.Equal(0x10000010u, m.Hypervisor.Vcpu.Cr2);
    }

    [Theory]
    [InlineData(0, true)]   // DPL 0 < ring 1: #GP(n*8+2) with EIP at the int
    [InlineData(1, false)]  // DPL 1: vector delivered, EIP after the int, no error code
    [InlineData(3, false)]
    public void IntNFollowsTheTrapTableDpl(byte dpl, bool expectGp)
    {
        var g = new XenTestGuest().TrapTable(0, (0x40, dpl, KCs, H1), (13, 0, KCs, H2));
        uint intAt = 0;
        g.Main(a =>
        {
            SetTrapTable(a, 0);
            a.mov(esp, KernelStackTop);
            a.@int(0x40);
        });
        intAt = Entry + (uint)Assemble(a => { SetTrapTable(a, 0); a.mov(esp, KernelStackTop); }, Entry).Length;
        g.Code(H1, a => DumpStackAndStop(a, 2, 0, 0));
        g.Code(H2, a => DumpStackAndStop(a, 2, 0, 1));
        var m = g.Machine();
        var r = Run(m);
        if (expectGp)
        {
            Assert.Equal(MachineExitKind.Rebooted, r.Kind);
            Assert.Equal(0x40u * 8 + 2, Read32(m, Scratch));
            Assert.Equal(intAt, Read32(m, Scratch + 4));
        }
        else
        {
            Assert.Equal(MachineExitKind.PoweredOff, r.Kind);
            Assert.Equal(intAt + 2, Read32(m, Scratch));
            Assert.Equal(KCs | (1u << 16), Read32(m, Scratch + 4));
        }
    }

    [Fact]
    public void Int3AlwaysReachesTheGuestWhateverItsDpl()
    {
        var g = new XenTestGuest().TrapTable(0, (3, 0, KCs, H1));
        g.Main(a => { SetTrapTable(a, 0); a.mov(esp, KernelStackTop); a.int3(); });
        g.Code(H1, a => DumpStackAndStop(a, 1));
        var m = g.Machine();
        Assert.Equal(MachineExitKind.PoweredOff, Run(m).Kind);
        Assert.Equal(Entry + (uint)Assemble(a => { SetTrapTable(a, 0); a.mov(esp, KernelStackTop); }, Entry).Length + 1, Read32(m, Scratch));
    }

    /// <summary>Kernel → HYPERVISOR_iret → ring 3 → int 0x80 (DPL 3, bit 2 set) → kernel on kernel_ss:kernel_sp.</summary>
    [Fact]
    public void IretHypercallToRing3AndBackThroughInt80WithStackSwitch()
    {
        var g = new XenTestGuest().TrapTable(0, (0x80, 3 | 4, KCs, H1));
        g.Main(a =>
        {
            SetTrapTable(a, 0);
            a.mov(ebx, XenLayout.FlatKernelSs); a.mov(ecx, KernelStackTop);
            Hcall(a, 3);                                   // stack_switch
            a.mov(esp, KernelStackTop - 0x200);
            a.push(XenLayout.FlatUserSs);
            a.push(UserStack + 0x800);
            a.push(0x202);                                 // IF set: events unmasked after the iret
            a.push(XenLayout.FlatUserCs);
            a.push(UserCode);
            a.mov(eax, 0x1234);                            // restored from the frame by the stub's push
            a.jmp(HcPage + 23 * 32);
        });
        g.Code(H1, a => DumpStackAndStop(a, 5));
        var m = g.Machine();
        byte[] user = Assemble(a => { a.mov(__dword_ptr.ss[UserStack + 0x10], eax); a.mov(eax, 0x77); a.@int(0x80); }, UserCode);
        Write(m, UserCode, user);
        MakeUser(m, UserCode);
        MakeUser(m, UserStack);
        var r = Run(m);
        Assert.True(r.Kind == MachineExitKind.PoweredOff, r.ToString());
        Assert.Equal(0x1234u, Read32(m, UserStack + 0x10));         // EAX popped by HYPERVISOR_iret
        Assert.Equal(UserCode + (uint)user.Length, Read32(m, Scratch));
        Assert.Equal(XenLayout.FlatUserCs | 0u, Read32(m, Scratch + 4)); // saved mask 0 (IF was set)
        Assert.Equal(Fl.IF, Read32(m, Scratch + 8) & Fl.IF);
        Assert.Equal(UserStack + 0x800, Read32(m, Scratch + 12));
        Assert.Equal((uint)XenLayout.FlatUserSs, Read32(m, Scratch + 16));
        Assert.Equal(KernelStackTop - 20, Read32(m, Scratch + 0x100));
        Assert.Equal(1, m.Hypervisor.SharedInfo.UpcallMask(0));     // TI bit 2 masks events
    }

    [Fact]
    public void PageFaultFromRing3SetsTheUserBit()
    {
        var g = new XenTestGuest().TrapTable(0, (14, 0, KCs, H1));
        g.Main(a =>
        {
            SetTrapTable(a, 0);
            a.mov(ebx, XenLayout.FlatKernelSs); a.mov(ecx, KernelStackTop);
            Hcall(a, 3);
            a.push(XenLayout.FlatUserSs); a.push(UserStack + 0x800); a.push(0x202);
            a.push(XenLayout.FlatUserCs); a.push(UserCode);
            a.jmp(HcPage + 23 * 32);
        });
        g.Code(H1, a => DumpStackAndStop(a, 6));
        var m = g.Machine();
        Write(m, UserCode, Assemble(a => a.mov(eax, __dword_ptr.ss[Scratch]), UserCode)); // kernel page: U=0
        MakeUser(m, UserCode);
        MakeUser(m, UserStack);
        Assert.Equal(MachineExitKind.PoweredOff, Run(m).Kind);
        Assert.Equal(PfErr.P | PfErr.U, Read32(m, Scratch));        // protection, read, user
        Assert.Equal(UserCode, Read32(m, Scratch + 4));
        Assert.Equal((uint)XenLayout.FlatUserCs, Read32(m, Scratch + 8) & 0xFFFF);
        Assert.Equal(Scratch, m.Hypervisor.Vcpu.Cr2);
    }

    [Fact]
    public void FailsafeOnABadIretFrame()
    {
        var g = new XenTestGuest();
        g.Main(a =>
        {
            SetCallbacks(a, H1, H2);
            a.mov(esp, KernelStackTop - 0x100);
            a.push(0x202);
            a.push(0x0009);          // GDT index 1, RPL 1: this domain supplied no GDT
            a.push(0xC0DE0000);
            a.jmp(HcPage + 23 * 32);
        });
        g.Code(H2, a => Shutdown(a, 1)); // uses no data segment: DS..GS are null here
        var m = g.Machine();
        var failsafes = new List<string>();
        m.Hypervisor.Observer = new Obs(failsafes);
        Assert.Equal(MachineExitKind.Rebooted, Run(m).Kind);
        uint frame = m.Cpu.Esp + 4; // above the stub's return address
        Assert.Equal((uint)XenLayout.FlatKernelDs, Read32(m, frame));      // DS, ES, FS, GS first
        Assert.Equal((uint)XenLayout.FlatKernelDs, Read32(m, frame + 12));
        Assert.Equal(0xC0DE0000u, Read32(m, frame + 16));                  // then the bad iret frame
        Assert.Equal(0x0009u, Read32(m, frame + 20) & 0xFFFF);
        Assert.Equal(0, m.Cpu.Segs[Seg.DS].Selector);
        Assert.False(m.Cpu.Segs[Seg.DS].Usable);
        Assert.Single(failsafes);
        Assert.Contains("iret to cs 0009", failsafes[0]);
    }

    [Fact]
    public void FailsafeWhenADataSegmentNoLongerLoads()
    {
        var g = new XenTestGuest();
        g.Main(a => { SetCallbacks(a, H1, H2); a.ud2(); });
        g.Code(H2, a => Shutdown(a, 1));
        var m = g.Machine();
        var fs = m.Cpu.Segs[Seg.FS];
        fs.Selector = 0x0013; // a stale GDT selector (index 2, RPL 3)
        m.Cpu.Segs[Seg.FS] = fs;
        Assert.Equal(MachineExitKind.Rebooted, Run(m).Kind);
        uint frame = m.Cpu.Esp + 4;
        Assert.Equal(0x0013u, Read32(m, frame + 8));   // FS slot
        Assert.Equal(1, m.Hypervisor.Stats.Failsafes);
    }

    [Fact]
    public void FailsafeWithNoCallbackCrashesTheDomain()
    {
        var g = new XenTestGuest();
        g.Main(a => { a.push(0x202); a.push(0x0009); a.push(0); a.jmp(HcPage + 23 * 32); });
        var m = g.Machine();
        var r = Run(m);
        Assert.Equal(MachineExitKind.Crashed, r.Kind);
    }

    [Fact]
    public void IretToRing0CrashesTheDomain()
    {
        var g = new XenTestGuest();
        g.Main(a => { a.push(0x202); a.push(XenLayout.HypervisorCs); a.push(Entry); a.jmp(HcPage + 23 * 32); });
        var r = Run(g.Machine());
        Assert.Equal(MachineExitKind.Crashed, r.Kind);
        Assert.Contains("ring 0", r.Detail);
    }

    [Fact]
    public void IretRestoresTheMaskFromIfAndDeliversAPendingEvent()
    {
        // Mask starts at 1 with an IPI pending; an iret frame with IF=1 unmasks and the upcall
        // arrives on the way out, on top of the iret's target context.
        var g = new XenTestGuest();
        g.Main(a =>
        {
            SetCallbacks(a, H1, H2);
            a.mov(esp, KernelStackTop - 0x100);
            a.push(0x202); a.push(KCs); a.push(H3);
            a.jmp(HcPage + 23 * 32);
        });
        g.Code(H1, a => DumpStackAndStop(a, 3));
        g.Code(H3, a => Shutdown(a, 1));
        var m = g.Machine();
        Assert.Equal(0, m.Hypervisor.Events.BindIpi(0, out uint port));
        Assert.Equal(0, m.Hypervisor.Events.Send(port));
        Assert.Equal(MachineExitKind.PoweredOff, Run(m).Kind);
        Assert.Equal(H3, Read32(m, Scratch));
        Assert.Equal((uint)KCs, Read32(m, Scratch + 4)); // saved mask 0
        Assert.Equal(Fl.IF, Read32(m, Scratch + 8) & Fl.IF);
        Assert.Equal(1, m.Hypervisor.Stats.Upcalls);
    }

    [Fact]
    public void UpcallArrivesWhenTheGuestUnmasksAndCallsXenVersion()
    {
        var g = new XenTestGuest();
        uint afterStub = HcPage + 17 * 32 + 7;
        g.Main(a =>
        {
            SetCallbacks(a, H1, H2);
            a.mov(esp, KernelStackTop);
            a.mov(__byte_ptr[SharedInfoVa + 1], 0);  // evtchn_upcall_mask = 0: nothing happens yet
            a.mov(__dword_ptr[Scratch + 0x20], 1);
            a.mov(ebx, 0); a.mov(ecx, 0);
            Hcall(a, 17);                            // the return path delivers the upcall
            a.ud2();
        });
        g.Code(H1, a => DumpStackAndStop(a, 3));
        var m = g.Machine();
        MapSharedInfo(m);
        Assert.Equal(0, m.Hypervisor.Events.BindIpi(0, out uint port));
        m.Hypervisor.Events.Send(port);
        var seen = new List<uint[]>();
        m.Hypervisor.Observer = new Obs(null, seen);
        Assert.Equal(MachineExitKind.PoweredOff, Run(m).Kind);
        Assert.Equal(afterStub, Read32(m, Scratch));
        Assert.Equal((uint)KCs, Read32(m, Scratch + 4));
        Assert.Equal(1u, Read32(m, Scratch + 0x20));
        Assert.Single(seen);
        Assert.Equal([port], seen[0]);
        Assert.Equal(1, m.Hypervisor.SharedInfo.UpcallMask(0));
    }

    [Fact]
    public void BlockWakesOnTheSingleshotTimer()
    {
        var g = new XenTestGuest();
        // DataPage holds evtchn_bind_virq {virq 0 (TIMER), vcpu 0, port out}: all zero already.
        g.Main(a =>
        {
            SetCallbacks(a, H1, H2);
            a.mov(esp, KernelStackTop);
            a.mov(ebx, 1); a.mov(ecx, DataPage); Hcall(a, 32); // EVTCHNOP_bind_virq(TIMER, vcpu 0)
            a.mov(ebx, 50_000_000); a.mov(ecx, 0); Hcall(a, 15); // set_timer_op(50 ms)
            a.mov(ebx, 1); a.mov(ecx, 0); Hcall(a, 29);        // SCHEDOP_block
            a.mov(__dword_ptr[Scratch + 0x30], 0x600D);
            a.ud2();
        });
        g.Code(H1, a => DumpStackAndStop(a, 3));
        var m = g.Machine();
        var r = Run(m);
        Assert.Equal(MachineExitKind.PoweredOff, r.Kind);
        Assert.True(m.Hypervisor.NowNs >= 50_000_000);
        Assert.True(m.Icount < 1_000);                           // the time passed idle, not executing
        Assert.True(m.Hypervisor.BlockedNs > 49_000_000);
        Assert.Equal((uint)KCs, Read32(m, Scratch + 4));          // block cleared the mask
        Assert.Equal(HcPage + 29 * 32 + 7, Read32(m, Scratch));
        Assert.Equal(0u, Read32(m, Scratch + 0x30));
    }

    [Fact]
    public void BlockWithNothingToWakeReturnsIdle()
    {
        var g = new XenTestGuest();
        g.Main(a => { a.mov(ebx, 1); Hcall(a, 29); a.ud2(); });
        var m = g.Machine();
        Assert.Equal(MachineExitKind.Idle, Run(m).Kind);
    }

    [Fact]
    public void PastTimerFiresOnTheSameHypercallReturn()
    {
        var g = new XenTestGuest();
        g.Main(a =>
        {
            SetCallbacks(a, H1, H2);
            a.mov(esp, KernelStackTop);
            a.mov(ebx, 1); a.mov(ecx, DataPage); Hcall(a, 32);   // bind VIRQ_TIMER (Data = {0, 0})
            a.mov(__byte_ptr[SharedInfoVa + 1], 0);
            a.mov(ebx, 1); a.mov(ecx, 0); Hcall(a, 15);          // set_timer_op(1 ns): already past
            a.ud2();
        });
        g.Code(H1, a => DumpStackAndStop(a, 1));
        var m = g.Machine();
        MapSharedInfo(m);
        Assert.Equal(MachineExitKind.PoweredOff, Run(m).Kind);
        Assert.Equal(HcPage + 15 * 32 + 7, Read32(m, Scratch));
    }

    [Fact]
    public void ConsoleInputWakesABlockedGuest()
    {
        var g = new XenTestGuest();
        g.Main(a =>
        {
            SetCallbacks(a, H1, H2);
            a.mov(esp, KernelStackTop);
            a.mov(ebx, 1); Hcall(a, 29);
            a.ud2();
        });
        g.Code(H1, a => DumpStackAndStop(a, 3));
        var m = g.Machine();
        Assert.Equal(MachineExitKind.Idle, Run(m).Kind);
        ulong before = m.Hypervisor.SharedInfo.TimeVersion(0);
        m.PushConsoleInput("k"u8);
        Assert.Equal(MachineExitKind.PoweredOff, Run(m).Kind);
        Assert.Equal(HcPage + 29 * 32 + 7, Read32(m, Scratch));
        Assert.True(m.Hypervisor.SharedInfo.TimeVersion(0) > before); // schedule-in refreshed the time
        Assert.Equal((uint)'k', Read32(m, m.Domain.Virtual.Console) & 0xFF);
    }

    private sealed class Obs(List<string>? failsafes = null, List<uint[]>? upcalls = null) : IXenObserver
    {
        public void OnFailsafe(ulong icount, uint eip, string cause) => failsafes?.Add(cause);
        public void OnUpcall(ulong icount, int vcpu, ReadOnlySpan<uint> ports) => upcalls?.Add(ports.ToArray());
    }
}
