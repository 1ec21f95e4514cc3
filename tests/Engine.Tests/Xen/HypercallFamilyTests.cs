using System.Text;
using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Xen;
using Replayvisor.Engine.Xen.Hypercalls;
using static Replayvisor.Engine.Tests.Xen.XenTestGuest;

namespace Replayvisor.Engine.Tests.Xen;

/// <summary>Each hypercall family's validation rules and error codes: one passing and one failing case at least.</summary>
public class HypercallFamilyTests
{
    private const uint Unmapped = 0x10000000;
    private readonly XenMachine _m = new XenTestGuest().Main(a => Shutdown(a)).Machine();
    private Hypervisor Hv => _m.Hypervisor;

    private long Call(int nr, uint a1 = 0, uint a2 = 0, uint a3 = 0, uint a4 = 0, uint a5 = 0) =>
        Hv.Call(nr, new HypercallArgs(a1, a2, a3, a4, a5, 0));

    private uint R32(uint va) => Read32(_m, va);
    private void W32(uint va, uint v) => Write32(_m, va, v);

    [Fact]
    public void TableCoversThePvHypercalls()
    {
        var t = HypercallTable.Instance;
        foreach (int nr in new[] { 0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 26, 28, 29, 30, 32, 33 })
            Assert.NotNull(t[nr]);
        Assert.Null(t[11]);
        Assert.Null(t[25]);
        Assert.Equal("mmu_update", t[1]!.Name);
        Assert.True(t[1]!.MemoryManager);
        Assert.Equal(-Errno.ENOSYS, Call(11));
        Assert.Equal(-Errno.ENOSYS, Call(64));
    }

    [Fact]
    public void SetTrapTable()
    {
        W32(Scratch, 0x0420_000E); W32(Scratch + 4, 0xC0100800); // vector 14, flags 0, cs 0x0420 (RPL 0 → 1)
        W32(Scratch + 8, 0); W32(Scratch + 12, 0);
        Assert.Equal(0, Call(0, Scratch));
        Assert.Equal(0x0421, Hv.Vcpu.Traps[14].Cs);
        Assert.Equal(0xC0100800u, Hv.Vcpu.Traps[14].Address);
        Assert.Equal(-Errno.EFAULT, Call(0, Unmapped));
        Assert.Equal(-Errno.EFAULT, Call(0, Hv.Layout.HypervisorVirtStart));
        Assert.Equal(0, Call(0, 0)); // NULL clears all
        Assert.Equal(0u, Hv.Vcpu.Traps[14].Address);
    }

    [Fact]
    public void StackSwitchCallbacksAndFpuTaskswitch()
    {
        Assert.Equal(0, Call(3, 0xE020, 0xC0109000));
        Assert.Equal(0xE021, Hv.Vcpu.KernelSs);
        Assert.Equal(0, Call(4, 0xE018, 0x1111, 0xE019, 0x2222));
        Assert.Equal(0xE019, Hv.Vcpu.Event.Cs);
        Assert.Equal(0x2222u, Hv.Vcpu.Failsafe.Eip);
        Assert.Equal(0, Call(5, 1));
        Assert.True(Hv.Vcpu.VirtualTs);
        Assert.NotEqual(0u, _m.Cpu.Cr0 & Replayvisor.Engine.Cpu.Cr0Bits.TS);
        Assert.Equal(0, Call(5, 0));
        Assert.False(Hv.Vcpu.VirtualTs);
    }

    [Fact]
    public void CallbackOp()
    {
        // register failsafe with CALLBACKF_mask_events
        W32(Scratch, 1 | (1u << 16)); W32(Scratch + 4, 0xE019); W32(Scratch + 8, 0x3333);
        Assert.Equal(0, Call(30, 0, Scratch));
        Assert.True(Hv.Vcpu.FailsafeMasksEvents);
        W32(Scratch, 2); // syscall: x86_64 only
        Assert.Equal(-Errno.ENOSYS, Call(30, 0, Scratch));
        W32(Scratch, 0); // unregister event
        Assert.Equal(-Errno.EINVAL, Call(30, 1, Scratch));
        Assert.Equal(-Errno.EFAULT, Call(30, 0, Unmapped));
        Assert.Equal(-Errno.EINVAL, Call(30, 7, Scratch)); // 4.19 compat_callback_op: unknown command
        W32(Scratch, 5 | (1u << 16)); W32(Scratch + 4, 0xE018); W32(Scratch + 8, 0x4444); // sysenter, mask events, RPL 0 → 1
        Assert.Equal(0, Call(30, 0, Scratch));
        Assert.Equal(0xE019, Hv.Vcpu.Sysenter.Cs);
        Assert.True(Hv.Vcpu.SysenterMasksEvents);
        W32(Scratch, 7); W32(Scratch + 8, 0x5555); // syscall32, no mask
        Assert.Equal(0, Call(30, 0, Scratch));
        Assert.Equal(0x5555u, Hv.Vcpu.Syscall32.Eip);
        Assert.False(Hv.Vcpu.Syscall32MasksEvents);
        Assert.Equal(-Errno.EINVAL, Call(30, 1, Scratch)); // unregister syscall32
    }

    [Fact]
    public void CallbackOp31()
    {
        var m = new XenTestGuest().Main(a => Shutdown(a)).Machine(options: new XenMachineOptions { MemoryMiB = 8, Hypervisor = new HypervisorOptions { Abi = XenAbi.Xen3_1 } });
        long C(uint cmd, uint arg) => m.Hypervisor.Call(30, new HypercallArgs(cmd, arg, 0, 0, 0, 0));
        Write32(m, Scratch, 5); Write32(m, Scratch + 4, 0xE019); Write32(m, Scratch + 8, 0x4444);
        Assert.Equal(-Errno.ENOSYS, C(0, Scratch)); // sysenter needs a supervisor-mode kernel build of 3.1
        Write32(m, Scratch, 7);
        Assert.Equal(-Errno.ENOSYS, C(0, Scratch));
        Assert.Equal(-Errno.ENOSYS, C(1, Scratch));
        Assert.Equal(-Errno.ENOSYS, C(7, Scratch));
    }

    [Fact]
    public void DebugRegisters31()
    {
        var m = new XenTestGuest().Main(a => Shutdown(a)).Machine(options: new XenMachineOptions { MemoryMiB = 8, Hypervisor = new HypervisorOptions { Abi = XenAbi.Xen3_1 } });
        long C(int nr, uint a1, uint a2 = 0) => m.Hypervisor.Call(nr, new HypercallArgs(a1, a2, 0, 0, 0, 0));
        Assert.Equal(0, C(9, 7)); // 3.1 starts with zeroed debug registers
        Assert.Equal(0, C(8, 0, 0xC0100000));
        Assert.Equal(0xC0100000, C(9, 0));
        Assert.Equal(-Errno.EPERM, C(8, 1, m.Hypervisor.Layout.HypervisorVirtStart));
        Assert.Equal(-Errno.EPERM, C(8, 7, 1u << 13));          // GD
        Assert.Equal(-Errno.EPERM, C(8, 7, 2u << 16));          // R/W0 = 10 (I/O breakpoint)
        Assert.Equal(0, C(8, 7, 1));
        Assert.Equal(0x401, C(9, 7));
        Assert.Equal(0, C(8, 7, 0));
        Assert.Equal(0, C(9, 7));                               // 0 stays 0 on 3.1
        Assert.Equal(0, C(8, 6, 0));
        Assert.Equal(0xFFFF0FF0, C(9, 6));
        Assert.Equal(-Errno.EINVAL, C(8, 5, 0));
        Assert.Equal(-Errno.EINVAL, C(9, 8));
    }

    [Fact]
    public void DebugRegisters419()
    {
        Assert.Equal(0xFFFF0FF0, Call(9, 6));                   // vCPU reset values
        Assert.Equal(0x400, Call(9, 7));
        Assert.Equal(0, Call(8, 1, Hv.Layout.HypervisorVirtStart)); // any 32-bit address
        Assert.Equal(-Errno.EPERM, Call(8, 7, 1u << 13));          // GD
        Assert.Equal(-Errno.EPERM, Call(8, 7, 1 | 2u << 16));      // I/O breakpoint without CR4.DE
        Assert.Equal(0, Call(8, 7, 0));
        Assert.Equal(0x400, Call(9, 7));                         // always fixed
        Assert.Equal(0, Call(8, 5, 1));                          // DR5 aliases DR7 without CR4.DE
        Assert.Equal(0x401, Call(9, 7));
        Assert.Equal(0x401, Call(9, 5));
        Hv.Vcpu.GuestCr4De = true;
        Assert.Equal(-Errno.ENODEV, Call(8, 4, 0));
        Assert.Equal(-Errno.ENODEV, Call(9, 5));
        Assert.Equal(0, Call(8, 7, 1 | 2u << 16));               // emulated I/O breakpoint
        Assert.Equal(1u, Hv.Vcpu.Dr7Emul);
        Assert.Equal(0x20400u, Hv.Cpu.Dr[7]);                     // kept out of the CPU's DR7
        Assert.Equal(0x20401, Call(9, 7));
        Assert.Equal(-Errno.ENODEV, Call(8, 8, 0));
        Assert.Equal(-Errno.ENODEV, Call(9, 8));
    }

    /// <summary>Xen 3.1's answers (the profile of a non-PAE kernel, or --xen 3.1).</summary>
    [Fact]
    public void XenVersionCommands31()
    {
        var m = new XenTestGuest().Main(a => Shutdown(a)).Machine(options: new XenMachineOptions { MemoryMiB = 8, Hypervisor = new HypervisorOptions { Abi = XenAbi.Xen3_1 } });
        long C(uint cmd, uint arg) => m.Hypervisor.Call(17, new HypercallArgs(cmd, arg, 0, 0, 0, 0));
        Assert.Equal(0x00030001, C(0, 0));
        Assert.Equal(0, C(1, Scratch));
        Assert.Equal(".0", ReadString(m, Scratch, 16));
        Assert.Equal(0, C(3, Scratch));
        Assert.Equal("xen-3.0-x86_32p ", ReadString(m, Scratch, 1024));
        Assert.Equal(0, C(5, Scratch));
        Assert.Equal(0xF5800000u, Read32(m, Scratch));
        Assert.Equal(4096, C(7, 0));
        Assert.Equal(-Errno.EINVAL, C(7, Scratch));
        Write32(m, Scratch, 0);
        Assert.Equal(0, C(6, Scratch));
        Assert.Equal(1u << 4, Read32(m, Scratch + 4)); // pae_pgdir_above_4gb: the PAE kernel has pae_extended_cr3
        Write32(m, Scratch, 1);
        Assert.Equal(-Errno.EINVAL, C(6, Scratch));
        Assert.Equal(-Errno.EFAULT, C(2, Unmapped));
        Assert.Equal(0, C(2, Scratch));
        Assert.Equal(0, C(4, Scratch));
        Assert.Equal(0, C(8, Scratch));
        Assert.Equal(-Errno.ENOSYS, C(9, Scratch));
        Assert.Equal(-Errno.ENOSYS, C(10, 0));
    }

    /// <summary>Xen 4.19's answers to a compat domU (xen/common/kernel.c, xsm/dummy.h xsm_xen_version).</summary>
    [Fact]
    public void XenVersionCommands419()
    {
        Assert.Equal(XenAbi.Xen4_19, Hv.Abi);
        Assert.Equal(0x00040013, Call(17, 0, 0));
        Assert.Equal(0, Call(17, 1, Scratch));
        Assert.Equal(".0", ReadString(Scratch, 16));
        Assert.Equal(0, Call(17, 3, Scratch));
        Assert.Equal("xen-3.0-x86_64 xen-3.0-x86_32p", ReadString(Scratch, 1024));
        Assert.Equal(0, Call(17, 5, Scratch));
        Assert.Equal(0xF5800000u, R32(Scratch)); // HYPERVISOR_COMPAT_VIRT_START
        W32(Scratch, 0);
        Assert.Equal(0, Call(17, 6, Scratch));
        // pae_pgdir_above_4gb, mmu_pt_update_preserve_ad, highmem_assist, gnttab_map_avail_bits, memory_op_vnode_supported; no dom0
        Assert.Equal(1u << 4 | 1u << 5 | 1u << 6 | 1u << 7 | 1u << 13, R32(Scratch + 4));
        Assert.Equal(0, Call(17, 2, Scratch));
        Assert.StartsWith("gcc", ReadString(Scratch, 64));
        Assert.Equal(0, Call(17, 4, Scratch));
        Assert.Equal(4096, Call(17, 7, 0));
        Assert.Equal(0, Call(17, 8, Scratch));
        // commandline is denied to a domU: "<denied>" and its NUL, nothing more
        for (uint i = 0; i < 16; i += 4) W32(Scratch + i, 0x41414141);
        Assert.Equal(0, Call(17, 9, Scratch));
        Assert.Equal("<denied>", ReadString(Scratch, 9));
        Assert.Equal(0x41414141u, R32(Scratch + 12));
        Assert.Equal(-Errno.EPERM, Call(17, 10, 0)); // build_id: denied
        Assert.Equal(-Errno.ENOSYS, Call(17, 11, 0));
        Assert.Equal(-Errno.EFAULT, Call(17, 9, Unmapped));
    }

    [Fact]
    public void XenVersionForTheInitialDomainOn419()
    {
        var m = new XenTestGuest().Main(a => Shutdown(a)).Machine(options: new XenMachineOptions { MemoryMiB = 8, InitialDomain = true });
        long C(uint cmd, uint arg) => m.Hypervisor.Call(17, new HypercallArgs(cmd, arg, 0, 0, 0, 0));
        Write32(m, Scratch, 0x41414141);
        Assert.Equal(0, C(9, Scratch)); // Xen's own (empty) command line, 1024 bytes
        Assert.Equal(0u, Read32(m, Scratch));
        Write32(m, Scratch, 0);
        Assert.Equal(0, C(6, Scratch));
        Assert.NotEqual(0u, Read32(m, Scratch + 4) & 1u << 11); // XENFEAT_dom0
        Assert.Equal(-Errno.ENODATA, C(10, 0));
    }

    private static string ReadString(XenMachine m, uint va, int max)
    {
        var b = new byte[max];
        Assert.True(m.Guest.TryRead(va, b));
        int n = Array.IndexOf(b, (byte)0);
        return Encoding.ASCII.GetString(b, 0, n < 0 ? max : n);
    }

    private string ReadString(uint va, int max) => ReadString(_m, va, max);

    [Fact]
    public void ConsoleIo()
    {
        var sink = new BufferConsoleSink();
        Hv.ConsoleSink = sink;
        Write(_m, Scratch, "abc"u8);
        Assert.Equal(0, Call(18, 0, 3, Scratch));
        Assert.Equal("abc", sink.Text);
        Assert.Equal(-Errno.EFAULT, Call(18, 0, 3, Unmapped));
        Assert.Equal(0, Call(18, 1, 16, Scratch)); // domU: console_io input is empty (input goes to the ring)
        Assert.Equal(-Errno.ENOSYS, Call(18, 2, 0, 0));
    }

    [Fact]
    public void ConsoleIoReadForDom0()
    {
        var m = new XenTestGuest().Main(a => Shutdown(a)).Machine(options: new XenMachineOptions { MemoryMiB = 8, InitialDomain = true });
        m.PushConsoleInput("xy"u8);
        Assert.Equal(2, m.Hypervisor.Call(18, new HypercallArgs(1, 16, Scratch, 0, 0, 0)));
        Assert.Equal((uint)('x' | 'y' << 8), Read32(m, Scratch) & 0xFFFF);
        Assert.Equal(0, m.Hypervisor.Call(18, new HypercallArgs(1, 16, Scratch, 0, 0, 0)));
    }

    [Fact]
    public void MulticallResultsNestingUnknownAndFaults()
    {
        // entry 0: xen_version(0); 1: op 99; 2: nested multicall; 3: vm_assist(enable, 7) → -EINVAL
        uint list = Scratch + 0x400;
        void Entry(int i, uint op, params uint[] args)
        {
            W32(list + (uint)i * 32, op);
            W32(list + (uint)i * 32 + 4, 0xAAAAAAAA);
            for (int k = 0; k < args.Length; k++) W32(list + (uint)i * 32 + 8 + (uint)k * 4, args[k]);
        }
        Entry(0, 17, 0, 0);
        Entry(1, 99);
        Entry(2, 13, list, 1);
        Entry(3, 21, 0, 7);
        Assert.Equal(0, Call(13, list, 4));
        Assert.Equal(0x00040013u, R32(list + 4));
        Assert.Equal(unchecked((uint)-Errno.ENOSYS), R32(list + 32 + 4));
        Assert.Equal(unchecked((uint)-Errno.EINVAL), R32(list + 64 + 4));
        Assert.Equal(unchecked((uint)-Errno.EINVAL), R32(list + 96 + 4));
        Assert.Equal([new MulticallResult(17, 0x40013), new MulticallResult(99, -Errno.ENOSYS), new MulticallResult(13, -Errno.EINVAL), new MulticallResult(21, -Errno.EINVAL)],
            Hv.MulticallResults);
        Assert.Equal(-Errno.EFAULT, Call(13, Unmapped, 1));
        Assert.Equal(0, Call(13, Unmapped, 0));
    }

    [Fact]
    public void MemoryOp()
    {
        Write(_m, Scratch, BitConverter.GetBytes((ushort)EventChannels.DomidSelf));
        Assert.Equal(_m.Domain.NrPages, Call(12, 3, Scratch));
        Assert.Equal(_m.Domain.NrPages, Call(12, 4, Scratch));
        Write(_m, Scratch, BitConverter.GetBytes((ushort)0));
        Assert.Equal(-Errno.EPERM, Call(12, 3, Scratch));
        Assert.Equal(_m.Domain.Frames.TotalFrames, Call(12, 2, 0));
        // increase_reservation: the domain is at its maximum, no extent done
        W32(Scratch + 0x100, Scratch + 0x200); W32(Scratch + 0x104, 4); W32(Scratch + 0x108, 0); W32(Scratch + 0x10C, 0);
        Write(_m, Scratch + 0x110, BitConverter.GetBytes((ushort)EventChannels.DomidSelf));
        Assert.Equal(0, Call(12, 0, Scratch + 0x100));
        // decrease_reservation of two of our frames then a foreign one: 2 done
        W32(Scratch + 0x200, _m.Domain.P2m[100]); W32(Scratch + 0x204, _m.Domain.P2m[101]); W32(Scratch + 0x208, _m.Domain.M2PFirstMfn);
        Assert.Equal(2, Call(12, 1, Scratch + 0x100));
        // machphys_mfn_list
        W32(Scratch + 0x300, 8); W32(Scratch + 0x304, Scratch + 0x400);
        Assert.Equal(0, Call(12, 5, Scratch + 0x300));
        Assert.Equal(1u, R32(Scratch + 0x308));
        Assert.Equal(_m.Domain.M2PFirstMfn, R32(Scratch + 0x400));
        // memory_map: one RAM entry
        W32(Scratch + 0x500, 4); W32(Scratch + 0x504, Scratch + 0x600);
        Assert.Equal(0, Call(12, 9, Scratch + 0x500));
        Assert.Equal(1u, R32(Scratch + 0x500));
        Assert.Equal(_m.Domain.NrPages << 12, R32(Scratch + 0x608));
        Assert.Equal(-Errno.EFAULT, Call(12, 3, Unmapped));
        Assert.Equal(-Errno.ENOSYS, Call(12, 12, Scratch));
    }

    [Fact]
    public void PhysdevOps()
    {
        W32(Scratch, 1);
        Assert.Equal(0, Call(33, 6, Scratch));
        Assert.Equal(1, Hv.Vcpu.Iopl);
        W32(Scratch, 4);
        Assert.Equal(-Errno.EINVAL, Call(33, 6, Scratch));
        W32(Scratch, 5); W32(Scratch + 4, 0xFF);
        Assert.Equal(0, Call(33, 5, Scratch));
        Assert.Equal(0u, R32(Scratch + 4));
        W32(Scratch, 300);
        Assert.Equal(-Errno.EINVAL, Call(33, 5, Scratch));
        W32(Scratch, Scratch + 0x1000); W32(Scratch + 4, 1024);
        Assert.Equal(0, Call(33, 7, Scratch));
        W32(Scratch + 4, 70000);
        Assert.Equal(-Errno.EINVAL, Call(33, 7, Scratch));
        Assert.Equal(-Errno.EPERM, Call(33, 8, Scratch));
        Assert.Equal(-Errno.ENOSYS, Call(33, 99, Scratch));
        Assert.Equal(-Errno.EFAULT, Call(33, 6, Unmapped));
        // compat form: {cmd, union}
        W32(Scratch + 0x40, 6); W32(Scratch + 0x44, 3);
        Assert.Equal(0, Call(19, Scratch + 0x40));
        Assert.Equal(3, Hv.Vcpu.Iopl);
    }

    [Fact]
    public void GrantTableSetupAndQuery()
    {
        Write(_m, Scratch, BitConverter.GetBytes((ushort)EventChannels.DomidSelf));
        W32(Scratch + 4, 2); W32(Scratch + 12, Scratch + 0x100);
        Assert.Equal(0, Call(20, 2, Scratch, 1));
        Assert.Equal(0, (short)R32(Scratch + 8));
        Assert.Equal(Hv.GrantFrames[0], R32(Scratch + 0x100));
        Assert.Equal(Hv.GrantFrames[1], R32(Scratch + 0x104));
        Assert.Equal(-Errno.EINVAL, Call(20, 2, Scratch, 2));
        W32(Scratch + 4, 33);
        Assert.Equal(0, Call(20, 2, Scratch, 1));
        Assert.Equal(-1, (short)R32(Scratch + 8));
        Write(_m, Scratch, BitConverter.GetBytes((ushort)0));
        W32(Scratch + 4, 1);
        Assert.Equal(0, Call(20, 2, Scratch, 1));
        Assert.Equal(-8, (short)R32(Scratch + 8)); // GNTST_permission_denied
        Write(_m, Scratch + 0x200, BitConverter.GetBytes((ushort)EventChannels.DomidSelf));
        Assert.Equal(0, Call(20, 6, Scratch + 0x200, 1));
        Assert.Equal(2u, R32(Scratch + 0x204));
        Assert.Equal(32u, R32(Scratch + 0x208));
        W32(Scratch + 0x300, 2);
        Assert.Equal(-Errno.ENOSYS, Call(20, 8, Scratch + 0x300, 1)); // 4.19, max_grant_version 1: v2 as before set_version existed
        Assert.Equal(-Errno.EINVAL, Call(20, 2, Scratch, 513));
    }

    [Fact]
    public void PrivilegedOnlyInterfaces()
    {
        W32(Scratch + 4, ToolstackHypercalls.PlatformVersion);
        Assert.Equal(-Errno.EPERM, Call(7, Scratch));
        Assert.Equal(-Errno.EACCES, Call(36, Scratch)); // 4.19: the interface version is checked before XSM
        W32(Scratch + 4, ToolstackHypercalls.DomctlVersion); W32(Scratch + 8, 1); // domain 1: this one
        Assert.Equal(-Errno.EPERM, Call(36, Scratch));
        W32(Scratch + 8, 7);
        Assert.Equal(-Errno.ESRCH, Call(36, Scratch));
        Assert.Equal(-Errno.EPERM, Call(22, 0, 0, 0, 0, 0)); // update_va_mapping_otherdomain
        W32(Scratch, 0); W32(Scratch + 4, 0);
        Assert.Equal(-Errno.EPERM, Call(29, 4, Scratch));   // remote_shutdown
    }

    [Fact]
    public void VmAssistRulesGoThroughTheMemoryManager()
    {
        Assert.Equal(0, Call(21, 0, 2));
        Assert.NotEqual(0u, _m.Mm.VmAssist & 4);
        Assert.Equal(0, Call(21, 0, 4)); // architectural_iopl (4.19)
        Assert.True(_m.Mm.ArchitecturalIopl);
        Assert.Equal(-Errno.EINVAL, Call(21, 0, 6));
        Assert.Equal(-Errno.ENOSYS, Call(21, 2, 0));
        Assert.Equal(-Errno.EINVAL, Call(21, 2, 6)); // the type is checked first
    }

    [Fact]
    public void NmiOp()
    {
        W32(Scratch, 0xC0100900);
        Assert.Equal(0, Call(28, 0, Scratch));
        Assert.Equal(0xC0100900u, Hv.Vcpu.Traps[2].Address); // 4.19: register_guest_nmi_callback → trap_ctxt[2]
        Assert.Equal(-Errno.EFAULT, Call(28, 0, Unmapped));
        Assert.Equal(0, Call(28, 1, 0));
        Assert.Equal(-Errno.ENOSYS, Call(28, 5, 0));
    }
}
