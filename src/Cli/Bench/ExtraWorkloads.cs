using Iced.Intel;
using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Memory;
using static Iced.Intel.AssemblerRegisters;

namespace Replayvisor.Cli.Bench;

/// <summary>
/// Further CPU benchmark workloads, set up as <see cref="IntegerWorkload"/> (ring 0, 2-level
/// paging, identity-mapped low 4 MiB): string copies and fills, and a loop whose data lives on
/// the same 4 KiB page as its code.
/// </summary>
public static class ExtraWorkloads
{
    private const uint PageDir = 0x10000, PageTable = 0x11000, Code = 0x1000, Data = 0x100000, Stack = 0x200000;

    /// <summary>rep movsd (4 KiB memcpy) then rep stosd (4 KiB memset), forever.</summary>
    public static X86Cpu CreateString(CpuTier tier = CpuTier.Compiled) => Create(tier, a =>
    {
        Label outer = a.CreateLabel();
        a.mov(esp, Stack);
        a.cld();
        a.Label(ref outer);
        a.mov(esi, Data);
        a.mov(edi, Data + 0x1000);
        a.mov(ecx, 1024);
        a.rep.movsd();
        a.mov(edi, Data + 0x2000);
        a.mov(ecx, 1024);
        a.mov(eax, ebx);
        a.rep.stosd();
        a.add(ebx, 1);
        a.jmp(outer);
    });

    /// <summary>repe cmpsd over two equal 4 KiB blocks (memcmp), then repne scasb for a NUL 4 KiB on (strlen), forever.</summary>
    public static X86Cpu CreateScan(CpuTier tier = CpuTier.Compiled) => Create(tier, a =>
    {
        Label outer = a.CreateLabel();
        a.mov(esp, Stack);
        a.cld();
        a.mov(edi, Data + 0x3000);
        a.mov(ecx, 4096);
        a.mov(al, 0x41);
        a.rep.stosb(); // a 4 KiB string of 'A' followed by a NUL
        a.Label(ref outer);
        a.mov(esi, Data);
        a.mov(edi, Data + 0x1000);
        a.mov(ecx, 1024);
        a.repe.cmpsd();
        a.mov(edi, Data + 0x3000);
        a.mov(ecx, 0xFFFFFFFF);
        a.xor(eax, eax);
        a.repne.scasb();
        a.jmp(outer);
    });

    /// <summary>A counting loop that loads and stores variables on its own code page, with a call.</summary>
    public static X86Cpu CreateCodePageData(CpuTier tier = CpuTier.Compiled) => Create(tier, a =>
    {
        Label outer = a.CreateLabel(), inner = a.CreateLabel(), fn = a.CreateLabel();
        const uint var0 = Code + 0xF00, var1 = Code + 0xF40;
        a.mov(esp, Stack);
        a.Label(ref outer);
        a.mov(ecx, 1000);
        a.Label(ref inner);
        a.mov(eax, __dword_ptr[var0]);
        a.add(eax, ecx);
        a.mov(__dword_ptr[var0], eax);
        a.add(__dword_ptr[var1], 3);
        a.inc(__dword_ptr[var1 + 4]);
        a.call(fn);
        a.dec(ecx);
        a.jnz(inner);
        a.jmp(outer);
        a.Label(ref fn);
        a.push(ecx);
        a.xor(__dword_ptr[var1 + 8], ecx);
        a.pop(ecx);
        a.ret();
    });

    private static X86Cpu Create(CpuTier tier, Action<Assembler> emit)
    {
        var mem = new PhysicalMemory(1024);
        var cpu = new X86Cpu(mem, new IntegerWorkload.NullHost()) { Tier = tier };
        mem.Write32(PageDir, PageTable | 3);
        for (uint i = 0; i < 1024; i++) mem.Write32(PageTable + i * 4, (i << 12) | 3);
        var a = new Assembler(32);
        emit(a);
        var w = new ByteWriter();
        a.Assemble(w, Code);
        if (w.Bytes.Count > 0xE00) throw new InvalidOperationException("workload code overlaps its data");
        mem.WriteBytes(Code, w.Bytes.ToArray());
        cpu.Cr3 = PageDir;
        cpu.Cr0 |= Cr0Bits.PG | Cr0Bits.WP;
        cpu.FlushTlb();
        cpu.Eip = Code;
        return cpu;
    }

    private sealed class ByteWriter : CodeWriter
    {
        public List<byte> Bytes { get; } = new();
        public override void WriteByte(byte value) => Bytes.Add(value);
    }
}
