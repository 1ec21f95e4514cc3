using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Memory;

namespace Replayvisor.Engine.Tests.Differential;

/// <summary>
/// Runs <see cref="DiffCase"/>s on the emulator at CPL 0 with flat segments and 2-level paging
/// that maps the code page and the data area at the same linear addresses as natively (nothing
/// else is mapped, so a stray access faults in both). The snippet ends with hlt where the native
/// runner has its jump back. One CPU is reused for all cases: rewriting the code page exercises
/// the block cache's self-modifying-code invalidation on every case.
/// </summary>
public sealed class EmulatorRunner
{
    private const uint PageDir = 0x1000, CodeTable = 0x2000, DataTable = 0x3000, CodePhys = 0x4000, DataPhys = 0x5000;
    /// <summary>Far more than any generated snippet retires; reaching it means a runaway loop.</summary>
    public const ulong MaxInstructions = 100_000;

    private readonly PhysicalMemory _mem = new(16);
    private readonly StopHost _host = new();
    public X86Cpu Cpu { get; }
    public CpuTier Tier { get; }

    /// <summary>The compiled tier compiles every block before its first run (threshold 0), so each snippet runs compiled.</summary>
    public EmulatorRunner(CpuTier tier)
    {
        Tier = tier;
        Cpu = new X86Cpu(_mem, _host) { Tier = tier, CompileThreshold = 0 };
        const uint Pte = 7; // present, writable, user
        _mem.Write32(PageDir + (DiffCase.CodeBase >> 22) * 4, CodeTable | Pte);
        _mem.Write32(PageDir + (DiffCase.DataBase >> 22) * 4, DataTable | Pte);
        _mem.Write32(CodeTable + ((DiffCase.CodeBase >> 12) & 0x3FF) * 4, CodePhys | Pte);
        for (uint i = 0; i < DiffCase.DataSize / 0x1000; i++)
            _mem.Write32(DataTable + (((DiffCase.DataBase >> 12) + i) & 0x3FF) * 4, (DataPhys + i * 0x1000) | Pte);
        Cpu.Cr3 = PageDir;
        Cpu.Cr0 |= Cr0Bits.PG;
        Cpu.FlushTlb();
    }

    public Outcome Run(DiffCase c)
    {
        var page = new byte[0x1000];
        Array.Fill(page, (byte)0xCC);
        c.Code.CopyTo(page, 0);
        page[c.Code.Length] = 0xF4; // hlt: the end marker
        _mem.WriteBytes(CodePhys, page);
        _mem.WriteBytes(DataPhys, c.InitialData());
        for (int i = 0; i < 8; i++) Cpu.Gpr[i] = c.Regs[i];
        Cpu.Eflags = (c.Eflags & DiffCase.ComparedFlags) | Fl.IF | Fl.Fixed1;
        Cpu.Eip = DiffCase.CodeBase;
        ulong start = Cpu.Icount; // counts run on from case to case: the CPU is the only writer
        _host.Reset();
        StopReason r = Cpu.Run(start + MaxInstructions);

        var o = new Outcome { Icount = Cpu.Icount - start };
        for (int i = 0; i < 8; i++) o.Regs[i] = Cpu.Gpr[i];
        o.Eflags = Cpu.Eflags;
        o.Data = new byte[DiffCase.DataSize];
        _mem.ReadBytes(DataPhys, o.Data);
        if (r == StopReason.Unsupported) { o.End = EndKind.Unsupported; o.Message = Cpu.StopMessage; }
        else if (r == StopReason.InstructionLimit) { o.End = EndKind.Hung; o.Message = $"no end after {MaxInstructions} instructions, eip {Cpu.Eip:x8}"; }
        else if (_host.Event is CpuEvent e) { o.End = EndKind.Exception; o.Vector = e.Vector; o.Eip = Cpu.Eip; o.Message = e.ToString(); }
        else if (_host.Halted && Cpu.Eip == DiffCase.CodeBase + (uint)c.Code.Length + 1) o.End = EndKind.Completed;
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
