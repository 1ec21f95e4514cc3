using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Xen.Hypercalls;
using Replayvisor.Engine.Xen.Mm;
using Replayvisor.Engine.Time;

namespace Replayvisor.Engine.Xen;

/// <summary>
/// The software model of Xen 3.1 (or 4.19's compat ABI) for one 32-bit PV domain with one or more vCPUs. As the CPU's
/// <see cref="ICpuHost"/> it receives every exception and software interrupt and decides, as Xen
/// does, between a hypercall (int 0x82), Xen-internal fixups (page faults, privileged-instruction
/// emulation, forced-emulation cpuid, lazy FPU) and a bounce into the guest's handlers. Every
/// path ends in <see cref="ReturnToGuest"/>, the model of entry.S test_all_events +
/// restore_all_guest (event upcalls, segment reloads, the final iret, the failsafe callback).
/// </summary>
public sealed partial class Hypervisor : ICpuHost
{
    private readonly HypercallTable _table;

    public Hypervisor(X86Cpu cpu, BuiltDomain domain, MemoryManager mm, GuestMemory guest, IGuestClock clock,
        HypervisorOptions? options = null)
    {
        Cpu = cpu;
        Domain = domain;
        _hypercallPage = domain.Guest.HypercallPage;
        Mm = mm;
        Guest = guest;
        Clock = clock;
        Options = options ?? new HypervisorOptions();
        Layout = domain.Layout;
        Privileged = domain.InitialDomain;
        Abi = Options.Abi ?? XenAbis.For(domain.IsPae);
        XenAbis.CheckKernel(Abi, domain.IsPae);
        Domid = Options.DomainId ?? (ushort)(domain.InitialDomain ? 0 : 1);
        SegmentLoader = new CpuSegmentLoader(cpu, mm);
        mm.VmAssistValid = Xen4 ? Vmasst.ValidCompat : Vmasst.Valid31;
        mm.CompatGuest = Xen4;
        SharedInfo = new SharedInfoPage(domain.Memory, domain.SharedInfoMfn);
        Vcpus = CreateVcpus(Options.VcpuCount);
        _parked = new ParkedVcpu?[Vcpus.Length];
        _runstates = Vcpus.Length > 1 ? CreateRunstates(Vcpus.Length) : [];
        Events = new EventChannels(SharedInfo, Vcpus, Domid, Privileged, OnBackendNotified) { PerPortPollers = Xen4 };
        Console = new ConsoleBackend(this);
        _table = HypercallTable.Instance;

        var v0 = domain.Vcpu0;
        Vcpu.KernelSs = v0.KernelSs;
        Vcpu.KernelSp = v0.KernelSp;
        foreach (var v in Vcpus)
        {
            v.PeriodNs = Options.PeriodicTimerNs;
            if (!Xen4) continue;
            // vcpu reset of 4.x: DR6 and DR7 start at their architectural values (X86_DR6_DEFAULT, X86_DR7_DEFAULT).
            v.DebugRegs[6] = Dr6Ones;
            v.DebugRegs[7] = Dr7Ones;
        }
        if (Xen4)
        {
            cpu.Dr[6] = Dr6Ones;
            cpu.Dr[7] = Dr7Ones;
        }
        if (!domain.InitialDomain)
        {
            Events.ConnectToBackend(BuiltDomain.StoreEvtchn, ConsoleBackend.BackendStorePort);
            Events.ConnectToBackend(BuiltDomain.ConsoleEvtchn, ConsoleBackend.BackendConsolePort);
        }
    }

    public X86Cpu Cpu { get; }
    public BuiltDomain Domain { get; }

    /// <summary>Domain.Guest.HypercallPage (fixed at boot), one load for the recorder's call-site reads at every hypercall and upcall.</summary>
    private readonly uint? _hypercallPage;
    public XenLayout Layout { get; }
    public MemoryManager Mm { get; }
    public GuestMemory Guest { get; }
    public IGuestClock Clock { get; }
    public HypervisorOptions Options { get; }
    /// <summary>The Xen profile the guest sees (<see cref="HypervisorOptions.Abi"/>, or chosen by the kernel).</summary>
    public XenAbi Abi { get; }
    /// <summary>True for Xen 4.19's compat ABI, false for Xen 3.1.</summary>
    public bool Xen4 => Abi != XenAbi.Xen3_1;
    /// <summary>XENVER_version for the profile.</summary>
    public uint XenVersion => XenAbis.Version(Abi);
    /// <summary>The descriptor loads of Xen's return-to-guest path, done by the CPU's own checks.</summary>
    public ISegmentLoader SegmentLoader { get; }
    public SharedInfoPage SharedInfo { get; }
    public VcpuState[] Vcpus { get; }
    /// <summary>The running vCPU.</summary>
    public VcpuState Vcpu => Vcpus[_current];
    public EventChannels Events { get; }
    public ConsoleBackend Console { get; }
    public bool Privileged { get; }
    public ushort Domid { get; }
    public HypervisorStats Stats { get; } = new();

    /// <summary>Observes hypercalls, deliveries, console traffic and shutdown; null by default.</summary>
    public IXenObserver? Observer
    {
        get => _observer;
        set
        {
            _observer = value;
            _trace = value as Session.TraceObserver;
        }
    }

    private IXenObserver? _observer;
    /// <summary><see cref="Observer"/> when it is the recorder's or the replay's (a sealed class): hypercalls and upcalls call it directly, with the vCPU.</summary>
    private Session.TraceObserver? _trace;

    /// <summary>Where guest console output goes (console_io writes and the PV console ring).</summary>
    public IConsoleSink? ConsoleSink { get; set; }

    /// <summary>Why the domain stopped, or <see cref="ShutdownKind.None"/> while it runs.</summary>
    public ShutdownKind Shutdown { get; private set; } = ShutdownKind.None;
    public string ShutdownDetail { get; private set; } = "";
    public bool IsStopped => Shutdown != ShutdownKind.None;

    /// <summary>Current Xen system time.</summary>
    public ulong NowNs => Clock.SystemTimeNs(Cpu.Icount);

    /// <summary>Sets up the shared_info time fields (vcpu_time_info, wallclock) as the domain starts.</summary>
    public void Start()
    {
        var (sec, nsec) = Clock.BootWallclock;
        SharedInfo.WriteWallclock(sec, nsec);
        SharedInfo.WriteMaxPfn(Domain.NrPages);
        UpdateVcpuTime();
        ArmFastSystemCalls();
        _nextTimeRefreshNs = NowNs + Options.TimeRefreshNs;
        SyncVirtualTs();
    }

    /// <summary>The domain stops: a guest shutdown request.</summary>
    internal void RequestShutdown(uint reason)
    {
        var kind = reason switch { 0 => ShutdownKind.PowerOff, 1 => ShutdownKind.Reboot, 2 => ShutdownKind.Suspend, 3 => ShutdownKind.Crash, _ => ShutdownKind.Watchdog };
        StopDomain(kind, reason <= 4 ? $"guest requested shutdown ({kind})" : $"guest requested shutdown with unknown reason {reason}");
    }

    /// <summary>domain_crash_synchronous: the model kills the domain (never the emulator).</summary>
    public void CrashDomain(string why) => StopDomain(ShutdownKind.DomainCrash, why);

    private void StopDomain(ShutdownKind kind, string detail)
    {
        if (IsStopped) return;
        Shutdown = kind;
        ShutdownDetail = detail;
        Cpu.RequestStop();
        Observer?.OnShutdown(Cpu.Icount, kind, detail);
    }

    /// <summary>True once the guest has written to its PV console ring (for <see cref="ConsoleView.Auto"/>).</summary>
    private bool _ringUsed;

    /// <summary>Console output from the guest (console_io write or the PV ring): recorded always, shown as the console view says.</summary>
    internal void EmitConsole(ReadOnlySpan<byte> bytes, ConsoleSource source)
    {
        if (bytes.IsEmpty) return;
        if (source == ConsoleSource.Ring) _ringUsed = true;
        bool show = Options.Console switch
        {
            ConsoleView.Ring => source == ConsoleSource.Ring,
            ConsoleView.Hypervisor => source == ConsoleSource.Hypervisor,
            ConsoleView.Both => true,
            _ => source == ConsoleSource.Ring || !_ringUsed,
        };
        if (show) ConsoleSink?.Write(bytes);
        Observer?.OnConsoleOutput(Cpu.Icount, bytes);
    }

    /// <summary>Input bytes for the guest: the PV console ring (domU) or the console_io read queue (dom0).</summary>
    public void PushConsoleInput(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty) return;
        Observer?.OnConsoleInput(Cpu.Icount, bytes);
        Console.PushInput(bytes);
    }

    private void OnBackendNotified(uint port) => Console.OnGuestNotify(port);

    // ---- ICpuHost inputs ----

    public void Halt(X86Cpu cpu) => cpu.RequestStop(); // hlt at CPL 0 never happens to a PV guest

    public ulong ReadTsc(X86Cpu cpu) => Clock.Tsc(cpu.Icount);

    public void Cpuid(X86Cpu cpu, uint leaf, uint subleaf, out uint eax, out uint ebx, out uint ecx, out uint edx) =>
        CpuidTable.Query(leaf, subleaf, Privileged, Abi, out eax, out ebx, out ecx, out edx);

    // At CPL 0 only (never for a PV guest): Xen answers I/O and MSRs through emulation after #GP(0).
    public uint PortIn(X86Cpu cpu, ushort port, int size) => IoPortRead(port, size);
    public void PortOut(X86Cpu cpu, ushort port, int size, uint value) => IoPortWrite(port, size, value);
    public bool ReadMsr(X86Cpu cpu, uint msr, out ulong value)
    {
        // The CPU's SYSENTER check reads Xen's own IA32_SYSENTER_CS: set by 64-bit Xen, left null by 3.1's.
        if (msr == Engine.Cpu.Handlers.FastSystemCall.MsrSysenterCs) { value = Xen4 ? XenCs : 0u; return true; }
        return TryReadMsr(msr, out value);
    }
    public bool WriteMsr(X86Cpu cpu, uint msr, ulong value) { WriteMsrEmulated(msr, value); return true; }
}
