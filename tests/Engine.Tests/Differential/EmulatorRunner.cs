using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Memory;

namespace Replayvisor.Engine.Tests.Differential;

/// <summary>
/// Runs <see cref="DiffCase"/>s on the emulator in the host process's world: 2-level paging maps
/// the code page, the data area and (per case) the read-only guard page at the same linear
/// addresses and with the same user/writable bits as natively (nothing else a snippet can reach is
/// mapped, so a stray access faults in both); the GDT and LDT hold the descriptors the host
/// process sees (<see cref="LinuxSegments"/>), on a supervisor-only page. At ring 3 the CPU starts
/// with Linux's user selectors (CS 0x23, DS ES SS 0x2b, FS GS null), exactly as the native
/// runner; at ring 0 with the kernel's 32-bit code and data selectors for CS and SS and the same
/// data selectors. CR0.WP is set, as under Xen, so a ring-0 store into a read-only page faults.
/// The snippet ends with hlt (a #GP(0) at ring 3, a halt at ring 0) where the native runner has
/// its jump back. One CPU is reused for all cases: rewriting the code page exercises the block
/// cache's self-modifying-code invalidation on every case.
/// </summary>
public sealed class EmulatorRunner
{
    private const uint PageDir = 0x1000, CodeTable = 0x2000, DataTable = 0x3000, CodePhys = 0x4000, DataPhys = 0x5000,
        GuardPhys = 0x7000, TablesPhys = 0x8000, SysTable = 0x9000;
    /// <summary>Linear address of the GDT (LDT at +0x800): the top page, supervisor-only.</summary>
    public const uint TablesLinear = 0xFFFF_F000;
    private const uint LdtOffset = 0x800;
    /// <summary>Far more than any generated snippet retires; reaching it means a runaway loop.</summary>
    public const ulong MaxInstructions = 100_000;

    private readonly PhysicalMemory _mem = new(16);
    private readonly StopHost _host = new();
    public X86Cpu Cpu { get; }
    public CpuTier Tier { get; }
    /// <summary>The privilege level snippets run at: 3 (as natively) or 0.</summary>
    public int Ring { get; }
    private GuardPage _guard = GuardPage.Unmapped;

    /// <summary>The compiled tier compiles every block before its first run (threshold 0), so each snippet runs compiled.</summary>
    public EmulatorRunner(CpuTier tier, int ring = 3)
    {
        if (ring is not (0 or 3)) throw new ArgumentOutOfRangeException(nameof(ring));
        Tier = tier;
        Ring = ring;
        Cpu = new X86Cpu(_mem, _host) { Tier = tier, CompileThreshold = 0 };
        const uint User = 7, Supervisor = 3; // present + writable (+ user)
        _mem.Write32(PageDir + (DiffCase.CodeBase >> 22) * 4, CodeTable | User);
        _mem.Write32(PageDir + (DiffCase.DataBase >> 22) * 4, DataTable | User);
        _mem.Write32(PageDir + (TablesLinear >> 22) * 4, SysTable | Supervisor);
        _mem.Write32(CodeTable + ((DiffCase.CodeBase >> 12) & 0x3FF) * 4, CodePhys | User);
        for (uint i = 0; i < DiffCase.DataSize / 0x1000; i++)
            _mem.Write32(DataTable + (((DiffCase.DataBase >> 12) + i) & 0x3FF) * 4, (DataPhys + i * 0x1000) | User);
        _mem.Write32(SysTable + ((TablesLinear >> 12) & 0x3FF) * 4, TablesPhys | Supervisor);
        foreach (var (index, d) in LinuxSegments.Gdt) _mem.Write64(TablesPhys + (uint)index * 8, d);
        for (int i = 0; i < LinuxSegments.Ldt.Length; i++) _mem.Write64(TablesPhys + LdtOffset + (uint)i * 8, LinuxSegments.Ldt[i]);
        Cpu.GdtrBase = TablesLinear;
        Cpu.GdtrLimit = LinuxSegments.GdtLimit;
        Cpu.Ldtr = SegmentCache.FromDescriptor(LinuxSegments.LdtSelector,
            Desc(TablesLinear + LdtOffset, (uint)LinuxSegments.Ldt.Length * 8 - 1, 0x82));
        Cpu.Cr3 = PageDir;
        Cpu.Cr0 |= Cr0Bits.PG | Cr0Bits.WP;
        Cpu.Cpl = ring;
        Cpu.FlushTlb();
    }

    private static ulong Desc(uint bas, uint limit, int access) =>
        (limit & 0xFFFF) | ((ulong)(bas & 0xFFFF) << 16) | ((ulong)((bas >> 16) & 0xFF) << 32) | ((ulong)access << 40) | ((ulong)(bas >> 24) << 56);

    private void SetGuard(GuardPage g)
    {
        if (g == GuardPage.ReadOnly) _mem.WriteBytes(GuardPhys, DataArea.GuardImage());
        if (g == _guard) return;
        // present + user, not writable; or not present at all
        _mem.Write32(DataTable + ((DiffCase.GuardBase >> 12) & 0x3FF) * 4, g == GuardPage.ReadOnly ? GuardPhys | 5 : 0);
        Cpu.FlushTlb();
        _guard = g;
    }

    private void LoadSegments()
    {
        ushort cs = Ring == 3 ? LinuxSegments.UserCode32 : LinuxSegments.KernelCode32;
        ushort ss = Ring == 3 ? LinuxSegments.UserData : LinuxSegments.KernelData;
        Cpu.Segs[Seg.CS] = SegmentCache.FromDescriptor(cs, LinuxSegments.GdtEntry(cs >> 3));
        Cpu.Segs[Seg.SS] = SegmentCache.FromDescriptor(ss, LinuxSegments.GdtEntry(ss >> 3));
        Cpu.Segs[Seg.DS] = Cpu.Segs[Seg.ES] = SegmentCache.FromDescriptor(LinuxSegments.UserData, LinuxSegments.GdtEntry(LinuxSegments.UserData >> 3));
        Cpu.Segs[Seg.FS] = Cpu.Segs[Seg.GS] = SegmentCache.Null(0);
    }

    public Outcome Run(DiffCase c)
    {
        var page = new byte[0x1000];
        Array.Fill(page, (byte)0xCC);
        c.Code.CopyTo(page, 0);
        page[c.Code.Length] = 0xF4; // hlt: the end marker
        _mem.WriteBytes(CodePhys, page);
        _mem.WriteBytes(DataPhys, c.InitialData());
        SetGuard(c.Guard);
        LoadSegments();
        for (int i = 0; i < 8; i++) Cpu.Gpr[i] = c.Regs[i];
        Cpu.Eflags = (c.Eflags & DiffCase.ComparedFlags) | Fl.IF | Fl.Fixed1;
        Cpu.Eip = DiffCase.CodeBase;
        ulong start = Cpu.Icount; // counts run on from case to case: the CPU is the only writer
        _host.Reset();
        StopReason r = Cpu.Run(start + MaxInstructions);

        uint end = DiffCase.CodeBase + (uint)c.Code.Length;
        var o = new Outcome { Icount = Cpu.Icount - start };
        for (int i = 0; i < 8; i++) o.Regs[i] = Cpu.Gpr[i];
        for (int i = 0; i < 6; i++) o.Sregs[i] = Cpu.Segs[i].Selector;
        o.Eflags = Cpu.Eflags;
        o.Data = new byte[DiffCase.DataSize];
        _mem.ReadBytes(DataPhys, o.Data);
        if (c.Guard == GuardPage.ReadOnly) { o.Guard = new byte[0x1000]; _mem.ReadBytes(GuardPhys, o.Guard); }
        if (r == StopReason.Unsupported) { o.End = EndKind.Unsupported; o.Message = Cpu.StopMessage; }
        else if (r == StopReason.InstructionLimit) { o.End = EndKind.Hung; o.Message = $"no end after {MaxInstructions} instructions, eip {Cpu.Eip:x8}"; }
        else if (_host.Event is CpuEvent e)
        {
            // At ring 3 the end marker's hlt raises #GP(0) at its own address: that is the normal end.
            if (Ring == 3 && e is { Vector: Vectors.GP, ErrorCode: 0, Kind: EventKind.Fault } && e.InstructionEip == end) o.End = EndKind.Completed;
            else
            {
                o.End = EndKind.Exception; o.Vector = e.Vector; o.Eip = Cpu.Eip; o.Message = e.ToString();
                o.ErrorCode = e.HasErrorCode ? e.ErrorCode : 0;
                o.Cr2 = e.Vector == Vectors.PF ? e.Cr2 : 0;
            }
        }
        else if (_host.Halted && Cpu.Eip == end + 1) o.End = EndKind.Completed;
        else { o.End = EndKind.WrongStop; o.Message = $"stopped at eip {Cpu.Eip:x8}"; }
        return o;
    }

    /// <summary>Stops the CPU at hlt or at the first exception and remembers which.</summary>
    private sealed class StopHost : ICpuHost
    {
        public CpuEvent? Event;
        public bool Halted;
        public void Reset() { Event = null; Halted = false; }
        public void Deliver(X86Cpu cpu, in CpuEvent e) { Event ??= e; cpu.RequestStop(); }
        public void Halt(X86Cpu cpu) { Halted = true; cpu.RequestStop(); }
        public ulong ReadTsc(X86Cpu cpu) => 0x0123_4567_89AB_CDEF;
        public void Cpuid(X86Cpu cpu, uint leaf, uint subleaf, out uint eax, out uint ebx, out uint ecx, out uint edx)
        { eax = 0; ebx = 0x756e6547; ecx = 0x6c65746e; edx = 0x49656e69; }
        public uint PortIn(X86Cpu cpu, ushort port, int size) => 0xFFFFFFFF;
        public void PortOut(X86Cpu cpu, ushort port, int size, uint value) { }
        public bool ReadMsr(X86Cpu cpu, uint msr, out ulong value) { value = 0; return false; }
        public bool WriteMsr(X86Cpu cpu, uint msr, ulong value) => false;
    }
}
