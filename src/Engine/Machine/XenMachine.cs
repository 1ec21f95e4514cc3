using System.Runtime.CompilerServices;
using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Memory;
using Replayvisor.Engine.State;
using Replayvisor.Engine.Xen;
using Replayvisor.Engine.Xen.Mm;
using Replayvisor.Engine.Time;

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
        Cpu = new X86Cpu(Domain.Memory, null!) { Tier = Options.Tier, CompileThreshold = Options.CompileThreshold };
        Guest = new GuestMemory(Cpu, Domain.Layout.HypervisorVirtStart);
        Mm = new MemoryManager(Cpu, Domain, Guest) { Privileged = Domain.InitialDomain };
        Hypervisor = new Hypervisor(Cpu, Domain, Mm, Guest, Clock, Options.Hypervisor);
        Cpu.Host = Hypervisor;
        if (Hypervisor.SegmentLoader is CpuSegmentLoader loader) loader.Caching = Options.SelectorLoadCache;
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

    /// <summary>vCPU0 at its first instruction (docs/xen-abi.md §7): ring 1, flat selectors from the reserved GDT.</summary>
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
        _resumePure = false; // the next run must look at what this input made pending
        // A sleeping vcpu that this woke is scheduled in by the next Run; a running one gets the upcall now.
        if (_sleeping || Hypervisor.Vcpu.Blocked) return;
        Hypervisor.DeliverPendingEvents();
    }

    private bool _sleeping;

    /// <summary>True while the run loop idles a blocked vCPU (from its first blocked iteration until it is scheduled in again).</summary>
    public bool IsSleeping => _sleeping;

    private ulong _armedDeadline = ulong.MaxValue;
    private ulong _timerDelay;

    /// <summary>
    /// Runs at most <paramref name="maxInstructions"/> more instructions. Inputs (console, chaos
    /// delays, checkpoints) enter only where <paramref name="inputs"/> asks to poll; a poll that
    /// injects nothing resumes the CPU exactly as if it had not stopped (no timer check, no event
    /// delivery, no clock read), so recording and replay agree however often each polls.
    /// </summary>
    public MachineExit Run(ulong maxInstructions, IRunInputs? inputs = null) => Run(maxInstructions, new AnyInputs(inputs ?? NoInputs.Instance));

    /// <summary>
    /// <see cref="Run(ulong, IRunInputs?)"/> with the inputs as a struct type argument: the JIT
    /// compiles a loop of its own for each such type, with the stop checks (called several times
    /// per stop) as direct calls it can inline, whatever the profile says. Compiled fully optimised
    /// at its first call: a loop entered once or twice per run would otherwise wait many runs for
    /// its optimised code and get it through on-stack replacement, compiled on the running thread.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public MachineExit Run<TInputs>(ulong maxInstructions, TInputs inputs) where TInputs : struct, IRunInputs
    {
        var hv = Hypervisor;
        ulong limit = ulong.MaxValue - Cpu.Icount < maxInstructions ? ulong.MaxValue : Cpu.Icount + maxInstructions;
        // A run that ended at a pure stop (its instruction limit, a poll that injected nothing)
        // resumes as the uninterrupted run would have continued: no timer check, no event delivery,
        // no clock read (a host-clock replay would otherwise read a time value the recording never took).
        bool pure = _resumePure;
        ulong timerAt = _resumeTimerAt;
        _resumePure = false;
        while (true)
        {
            if (hv.IsStopped) return ShutdownExit();
            StopSites.Top(Cpu.Icount);
            if (inputs.StopRequested)
            {
                StopSites.Redo();
                return Paused(pure, timerAt, StoppedExit());
            }
            if (!pure && Cpu.InInterruptShadow && Cpu.Icount < limit)
            {
                // MOV SS / POP SS hold interrupts back until the next instruction has run (SDM vol. 3 §6.8.3):
                // under Xen an upcall (or a switch to another vCPU) comes from an interrupt, so it waits too
                // (Cpu/Breakpoints.cs).
                if (Cpu.Run(Cpu.Icount + 1) == StopReason.Unsupported)
                    return new MachineExit(MachineExitKind.Unsupported, Cpu.StopMessage ?? "unsupported instruction", Cpu.Icount);
                continue;
            }
            if (hv.Smp && Schedule()) { pure = false; continue; }
            var v = hv.Vcpu;
            if (!Hypervisor.Runnable(v))
            {
                if (!v.Up && !hv.Vcpus.Any(x => x.Up))
                    return new MachineExit(MachineExitKind.Idle, "every vcpu is down", Cpu.Icount);
                _sleeping = true;
                pure = false;
                if (inputs.Poll(this, blocked: true)) continue;
                ulong wake = hv.NextWakeDeadlineNs();
                if (wake == 0)
                {
                    hv.Console.Poll();
                    if (Hypervisor.Runnable(v) || (hv.Smp && hv.PickNext() >= 0)) continue;
                    if (inputs.WaitForInput(this)) continue;
                    StopSites.Second();
                    if (inputs.StopRequested) return Paused(false, timerAt, StoppedExit());
                    return new MachineExit(MachineExitKind.Idle, "the vcpu is blocked and no timer or input can wake it", Cpu.Icount);
                }
                ulong now = hv.NowNs;
                if (wake > now)
                {
                    Clock.Idle(Cpu.Icount, wake);
                    hv.AccountBlocked(hv.NowNs - now);
                }
                hv.RunTimers();
                continue;
            }
            if (_sleeping)
            {
                // Runnable again (timer, event or input): Xen's schedule-in refreshes time, then the return path runs.
                _sleeping = false;
                hv.Wake();
                continue;
            }
            if (Cpu.Icount >= limit)
            {
                StopSites.Redo();
                return Paused(pure, timerAt, new MachineExit(MachineExitKind.InstructionLimit, "stopped after the instruction limit", Cpu.Icount));
            }
            if (!pure)
            {
                hv.RunTimers();
                hv.DeliverPendingEvents();
                if (hv.IsStopped || !Hypervisor.Runnable(v)) continue;
                ulong deadline = hv.NextDeadlineNs();
                if (deadline != _armedDeadline)
                {
                    _armedDeadline = deadline;
                    _timerDelay = inputs.TimerDelay(Cpu.Icount);
                }
                // Directly for the virtual clock (this loop is compiled without a profile to devirtualise from).
                timerAt = Clock is VirtualClock virtualClock ? virtualClock.IcountAt(Cpu.Icount, deadline) : Clock.IcountAt(Cpu.Icount, deadline);
                timerAt = ulong.MaxValue - timerAt < _timerDelay ? ulong.MaxValue : timerAt + _timerDelay;
                if (timerAt <= Cpu.Icount) timerAt = Cpu.Icount + 1;
            }
            pure = false;
            ulong pollAt = inputs.NextPoll(Cpu.Icount);
            if (pollAt <= Cpu.Icount)
            {
                // A poll due right now. Whatever it does, the purity of the next iteration is decided
                // by where the CPU run below stops, not by this poll.
                bool injected = inputs.Poll(this, blocked: false);
                if (injected) continue;
                StopSites.Second();
                if (inputs.StopRequested) return Paused(true, timerAt, StoppedExit()); // stopped at a poll that injected nothing
                pollAt = inputs.NextPoll(Cpu.Icount);
                if (pollAt <= Cpu.Icount) pollAt = ulong.MaxValue;
            }
            _runPollAt = pollAt;
            ulong stopAt = Math.Min(limit, Math.Min(timerAt, pollAt));
            if (hv.Smp) stopAt = Math.Min(stopAt, Math.Max(hv.SliceEnd, Cpu.Icount + 1));
            var r = Cpu.Run(stopAt);
            pollAt = _runPollAt;
            _runPollAt = ulong.MaxValue;
            if (r == StopReason.Unsupported)
                return new MachineExit(MachineExitKind.Unsupported, Cpu.StopMessage ?? "unsupported instruction", Cpu.Icount);
            if (Cpu.Icount == pollAt && Cpu.Icount < timerAt && !hv.IsStopped)
                pure = !inputs.Poll(this, blocked: v.Blocked) && r == StopReason.InstructionLimit && !v.Blocked;
            else if (r == StopReason.InstructionLimit && Cpu.Icount < timerAt && !hv.IsStopped && !v.Blocked)
                pure = true; // stopped at the run's limit or by Cpu.StopAtCurrentCount: nothing is due here
        }
    }

    /// <summary>Any <see cref="IRunInputs"/> as a struct type argument of <see cref="Run{TInputs}"/> (calls through the interface).</summary>
    private readonly struct AnyInputs(IRunInputs inputs) : IRunInputs
    {
        public ulong NextPoll(ulong icount) => inputs.NextPoll(icount);
        public bool Poll(XenMachine machine, bool blocked) => inputs.Poll(machine, blocked);
        public bool WaitForInput(XenMachine machine) => inputs.WaitForInput(machine);
        public ulong TimerDelay(ulong icount) => inputs.TimerDelay(icount);
        public bool StopRequested => inputs.StopRequested;
    }

    private bool _resumePure;
    private ulong _resumeTimerAt;

    /// <summary>Where the run loop may stop on request; a stopped run's exit names its site (<see cref="MachineExit.StopSite"/>).</summary>
    public StopSites StopSites { get; } = new();

    private MachineExit StoppedExit() => new(MachineExitKind.Stopped, "stopped on request", Cpu.Icount) { StopSite = StopSites.Current };
    private ulong _runPollAt = ulong.MaxValue;

    /// <summary>
    /// Makes the CPU run in progress stop and poll the inputs at <paramref name="icount"/> if that is
    /// sooner than planned. A host-clock replay takes recorded time values inside the run (rdtsc,
    /// hypercalls); taking one can uncover console input due before the run's stop count, which
    /// must enter at the same poll as when it was recorded (docs/record-replay.md "Console input").
    /// </summary>
    public void PollNoLaterThan(ulong icount)
    {
        if (icount >= _runPollAt) return;
        _runPollAt = icount;
        Cpu.StopNoLaterThan(icount);
    }

    /// <summary>
    /// The deterministic scheduler (docs/xen-model.md, "Several vCPUs"): at the end of the running
    /// vCPU's quantum, or as soon as it cannot run (blocked, polling, down, yielded), the next
    /// runnable vCPU in round-robin order gets the CPU. Decided only from instruction counts and
    /// vCPU states, so a replay switches at the same instructions. True when it switched.
    /// </summary>
    private bool Schedule()
    {
        var hv = Hypervisor;
        hv.SyncRunstates(); // a vCPU woken by console input since the last hypercall or timer run
        if (Hypervisor.Runnable(hv.Vcpu) && Cpu.Icount < hv.SliceEnd) return false;
        int next = hv.PickNext();
        if (next < 0) return false; // nothing can run: the idle path waits for a timer or input
        if (next == hv.CurrentVcpu)
        {
            hv.StartSlice(Cpu.Icount);
            return false;
        }
        _sleeping = false; // the switch is the incoming vCPU's schedule-in
        hv.SwitchTo(next);
        hv.StartSlice(Cpu.Icount);
        return true;
    }

    /// <summary>Remembers whether the next Run may resume without the timer check (see <see cref="Run"/>).</summary>
    private MachineExit Paused(bool pure, ulong timerAt, MachineExit exit)
    {
        _resumePure = pure;
        _resumeTimerAt = timerAt;
        return exit;
    }

    /// <summary>
    /// XxHash128 of the machine state in canonical form (docs/architecture.md, determinism contract 5): CPU,
    /// machine memory (guest frames, shared_info, rings, page tables, M2P), the virtual clock, the
    /// memory manager (frame table, GDT/LDT bookkeeping, vm_assist, kernel stack), the Xen model
    /// (vcpus, event channels, console queues, PIT, grant frames, time bookkeeping, shutdown) and
    /// whether the run loop still owes a blocked vcpu its schedule-in. Not hashed: statistics,
    /// observers, sinks, caches (TLB, decoded blocks) and the run loop's armed timer deadline,
    /// which depends on where earlier runs stopped, not on the guest.
    /// </summary>
    public byte[] StateHash()
    {
        // The encoding's small fields are gathered in a pooled buffer of the size the last hash needed
        // (tens of KiB; the per-frame runs are hashed in place), which each new machine would otherwise
        // allocate afresh, growing it by doubling, for the two hashes of a short recording.
        byte[] rented = System.Buffers.ArrayPool<byte>.Shared.Rent(_hashBytes > 0 ? _hashBytes : 64 * 1024);
        var w = new CanonicalWriter(rented);
        Cpu.WriteState(w);
        Domain.Memory.WriteState(w);
        w.Tag("clock");
        if (Clock is VirtualClock vc) w.U64(vc.IdleNs);
        Mm.WriteState(w);
        Hypervisor.WriteState(w);
        w.Tag("machine");
        w.Bool(_sleeping);
        byte[] hash = w.Finish();
        _hashBytes = Math.Max(_hashBytes, w.Peak);
        if (w.Scratch == rented) System.Buffers.ArrayPool<byte>.Shared.Return(rented); // a grown buffer is not the pool's: dropped
        return hash;
    }

    /// <summary>The most bytes a canonical encoding of this machine gathered in its buffer so far (0 before its first hash; a size hint, not state).</summary>
    private int _hashBytes;

    /// <summary>
    /// A deep copy of the whole machine at the current instruction boundary (call it between
    /// <see cref="Run"/>s, or from an input poll). Restoring it with <see cref="Restore"/> makes
    /// the machine continue exactly as it would have from here.
    /// </summary>
    public MachineSnapshot Snapshot() => SnapshotWith(Domain.Memory.SnapshotBytes(), null);

    /// <summary>
    /// As <see cref="Snapshot"/>, with memory as copy-on-write pages shared with this machine's
    /// earlier page snapshots (only pages written since the last one are copied): for snapshot ladders.
    /// </summary>
    public MachineSnapshot SnapshotSharingPages() => SnapshotWith(null, Domain.Memory.CapturePages());

    private MachineSnapshot SnapshotWith(byte[]? ram, RamPages? pages) => new()
    {
        Cpu = Cpu.Snapshot(),
        Ram = ram,
        Pages = pages,
        ClockIdleNs = Clock is VirtualClock vc ? vc.IdleNs : null,
        Mm = Mm.Snapshot(),
        Xen = Hypervisor.Snapshot(),
        Sleeping = _sleeping,
        ArmedDeadline = _armedDeadline,
        TimerDelay = _timerDelay,
        ResumePure = _resumePure,
        ResumeTimerAt = _resumeTimerAt,
        StopSites = StopSites.State,
    };

    /// <summary>
    /// Returns the machine to <paramref name="s"/> (taken from this machine or from one built from
    /// the same kernel and options). Caches (TLB, decoded blocks) are dropped; observers, sinks
    /// and statistics are kept as they are. The snapshot is not modified and can be reused.
    /// </summary>
    public void Restore(MachineSnapshot s)
    {
        ArgumentNullException.ThrowIfNull(s);
        if (s.Pages != null) Domain.Memory.RestorePages(s.Pages);
        else Domain.Memory.RestoreBytes(s.Ram ?? throw new ArgumentException("the snapshot holds no memory", nameof(s)));
        if (s.ClockIdleNs is ulong idle && Clock is VirtualClock vc) vc.IdleNs = idle;
        Mm.Restore(s.Mm);
        Hypervisor.Restore(s.Xen);
        Cpu.Restore(s.Cpu);
        _sleeping = s.Sleeping;
        _armedDeadline = s.ArmedDeadline;
        _timerDelay = s.TimerDelay;
        _resumePure = s.ResumePure;
        _resumeTimerAt = s.ResumeTimerAt;
        StopSites.State = s.StopSites;
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
