using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Xen;
using Replayvisor.Engine.Xen.Mm;

namespace Replayvisor.Engine.Machine;

/// <summary>
/// A whole deterministic machine: the domain built from a kernel image, one vCPU on the software
/// CPU, the MMU model and the Xen model. <see cref="Run"/> executes up to the next timer deadline
/// (converted to an instruction count through <see cref="IGuestClock"/>), fires timers, delivers
/// event upcalls at instruction boundaries, and idles a blocked vCPU by advancing time.
/// </summary>
public sealed class XenMachine
{
    public XenMachine(byte[] kernel, XenMachineOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        Options = options ?? new XenMachineOptions();
        var guest = XenGuestInfo.Parse(kernel);
        Domain = DomainBuilder.Build(guest, kernel, new DomainBuildOptions
        {
            MemoryMiB = Options.MemoryMiB,
            CommandLine = Options.CommandLine,
            InitialDomain = Options.InitialDomain,
        });
        Clock = Options.Clock ?? new VirtualClock(Options.EpochSeconds);
        Cpu = new X86Cpu(Domain.Memory, null!) { UseBlockCache = Options.UseBlockCache };
        Guest = new GuestMemory(Cpu, Domain.Layout.HypervisorVirtStart);
        Mm = new MemoryManager(Cpu, Domain, Guest) { Privileged = Domain.InitialDomain };
        Hypervisor = new Hypervisor(Cpu, Domain, Mm, Guest, Clock, Options.Hypervisor, Options.SegmentLoader);
        Cpu.Host = Hypervisor;
        Mm.Boot();
        SetInitialRegisters();
        Hypervisor.Start();
    }

    public XenMachineOptions Options { get; }
    public BuiltDomain Domain { get; }
    public IGuestClock Clock { get; }
    public X86Cpu Cpu { get; }
    public GuestMemory Guest { get; }
    public MemoryManager Mm { get; }
    public Hypervisor Hypervisor { get; }
    public ulong Icount => Cpu.Icount;

    /// <summary>Hypercall counts by name.</summary>
    public IReadOnlyDictionary<string, long> HypercallStats => Hypervisor.Stats.HypercallsByName();

    /// <summary>Exceptions raised by the CPU, by vector.</summary>
    public IReadOnlyDictionary<int, long> ExceptionStats => Hypervisor.Stats.ExceptionsByVectorMap();

    /// <summary>vCPU0 at its first instruction (xen-abi.md §7): ring 1, flat selectors from the reserved GDT.</summary>
    private void SetInitialRegisters()
    {
        var v = Domain.Vcpu0;
        var c = Cpu;
        c.Eax = v.Eax; c.Ebx = v.Ebx; c.Ecx = v.Ecx; c.Edx = v.Edx;
        c.Esi = v.Esi; c.Edi = v.Edi; c.Ebp = v.Ebp; c.Esp = v.Esp;
        c.Eip = v.Eip;
        c.Eflags = v.Eflags;
        var loader = Hypervisor.SegmentLoader;
        Load(loader, Seg.CS, v.Cs, 0);
        Load(loader, Seg.SS, v.Ss, v.Cs & 3);
        Load(loader, Seg.DS, v.Ds, 1);
        Load(loader, Seg.ES, v.Es, 1);
        Load(loader, Seg.FS, v.Fs, 1);
        Load(loader, Seg.GS, v.Gs, 1);
        c.Cpl = v.Cs & 3;
    }

    private void Load(ISegmentLoader loader, int seg, ushort sel, int cpl)
    {
        if (!loader.TryLoad(seg, sel, cpl, out var cache, out var fault))
            throw new InvalidOperationException($"initial {Seg.Names[seg]} selector {sel:x4} does not load: {fault}");
        Cpu.Segs[seg] = cache;
    }

    /// <summary>Pushes console input (the PV console ring for a domU, console_io read for dom0).</summary>
    public void PushConsoleInput(ReadOnlySpan<byte> bytes)
    {
        Hypervisor.PushConsoleInput(bytes);
        // A sleeping vcpu that this woke is scheduled in by the next Run; a running one gets the upcall now.
        if (_sleeping || Hypervisor.Vcpu.Blocked) return;
        Hypervisor.DeliverPendingEvents();
    }

    private bool _sleeping;

    /// <summary>Runs at most <paramref name="maxInstructions"/> more instructions.</summary>
    public MachineExit Run(ulong maxInstructions)
    {
        var hv = Hypervisor;
        var v = hv.Vcpu;
        ulong limit = ulong.MaxValue - Cpu.Icount < maxInstructions ? ulong.MaxValue : Cpu.Icount + maxInstructions;
        while (true)
        {
            if (hv.IsStopped) return ShutdownExit();
            if (v.Blocked)
            {
                _sleeping = true;
                ulong wake = hv.NextWakeDeadlineNs();
                if (wake == 0)
                {
                    hv.Console.Poll();
                    if (v.Blocked) return new MachineExit(MachineExitKind.Idle, "the vcpu is blocked and no timer can wake it", Cpu.Icount);
                }
                else
                {
                    ulong now = hv.NowNs;
                    if (wake > now)
                    {
                        Clock.Idle(Cpu.Icount, wake);
                        hv.AccountBlocked(hv.NowNs - now);
                    }
                    hv.RunTimers();
                }
                continue;
            }
            if (_sleeping)
            {
                // Runnable again (timer, event or input): Xen's schedule-in refreshes time, then the return path runs.
                _sleeping = false;
                hv.Wake();
                continue;
            }
            if (Cpu.Icount >= limit) return new MachineExit(MachineExitKind.InstructionLimit, $"stopped after the instruction limit", Cpu.Icount);
            hv.RunTimers();
            hv.DeliverPendingEvents();
            if (hv.IsStopped || v.Blocked) continue;
            ulong stopAt = Math.Min(limit, Clock.IcountAt(Cpu.Icount, hv.NextDeadlineNs()));
            if (stopAt <= Cpu.Icount) stopAt = Cpu.Icount + 1;
            var r = Cpu.Run(stopAt);
            if (r == StopReason.Unsupported)
                return new MachineExit(MachineExitKind.Unsupported, Cpu.StopMessage ?? "unsupported instruction", Cpu.Icount);
        }
    }

    private MachineExit ShutdownExit()
    {
        var hv = Hypervisor;
        var kind = hv.Shutdown switch
        {
            ShutdownKind.PowerOff => MachineExitKind.PoweredOff,
            ShutdownKind.Reboot => MachineExitKind.Rebooted,
            ShutdownKind.Suspend => MachineExitKind.Suspended,
            _ => MachineExitKind.Crashed,
        };
        return new MachineExit(kind, hv.ShutdownDetail, Cpu.Icount);
    }
}
