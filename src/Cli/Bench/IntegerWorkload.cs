using Iced.Intel;
using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Memory;
using static Iced.Intel.AssemblerRegisters;

namespace Replayvisor.Cli.Bench;

/// <summary>
/// The CPU benchmark workload: an integer kernel with ALU work, memory traffic, calls and
/// branches, run at ring 0 with 2-level paging on (identity-mapped low 4 MiB).
/// </summary>
public static class IntegerWorkload
{
    private const uint PageDir = 0x10000, PageTable = 0x11000, Code = 0x1000, Data = 0x100000, Stack = 0x200000;

    public sealed class NullHost : ICpuHost
    {
        public void Deliver(X86Cpu cpu, in CpuEvent e) => cpu.RequestStop();
        public void Halt(X86Cpu cpu) => cpu.RequestStop();
        public ulong ReadTsc(X86Cpu cpu) => cpu.Icount;
        public void Cpuid(X86Cpu cpu, uint leaf, uint subleaf, out uint eax, out uint ebx, out uint ecx, out uint edx) { eax = ebx = ecx = edx = 0; }
        public uint PortIn(X86Cpu cpu, ushort port, int size) => 0xFFFFFFFF;
        public void PortOut(X86Cpu cpu, ushort port, int size, uint value) { }
        public bool ReadMsr(X86Cpu cpu, uint msr, out ulong value) { value = 0; return false; }
        public bool WriteMsr(X86Cpu cpu, uint msr, ulong value) => false;
    }

    /// <summary>Builds a machine ready to run the workload (an endless loop).</summary>
    public static X86Cpu Create(CpuTier tier = CpuTier.Compiled)
    {
        var mem = new PhysicalMemory(1024);
        var cpu = new X86Cpu(mem, new NullHost()) { Tier = tier };
        mem.Write32(PageDir, PageTable | 3);
        for (uint i = 0; i < 1024; i++) mem.Write32(PageTable + i * 4, (i << 12) | 3);
        var a = new Assembler(32);
        Label outer = a.CreateLabel(), inner = a.CreateLabel(), mix = a.CreateLabel(), skip = a.CreateLabel();
        a.mov(esp, Stack);
        a.Label(ref outer);
        a.mov(esi, Data);
        a.mov(ecx, 256);
        a.xor(eax, eax);
        a.mov(ebx, 0x12345678);
        a.Label(ref inner);
        a.mov(edx, __dword_ptr[esi + ecx * 4]);
        a.add(eax, edx);
        a.xor(ebx, eax);
        a.lea(edi, __dword_ptr[ebx + ecx * 2 + 7]);
        a.mov(__dword_ptr[esi + ecx * 4], edi);
        a.test(ecx, 7);
        a.jnz(skip);
        a.call(mix);
        a.Label(ref skip);
        a.sub(ecx, 1);
        a.jnz(inner);
        a.jmp(outer);
        a.Label(ref mix);
        a.push(ebx);
        a.and(ebx, 0xFF);
        a.or(eax, ebx);
        a.cmp(eax, 0x1000);
        a.setb(dl);
        a.movzx(edx, dl);
        a.add(eax, edx);
        a.pop(ebx);
        a.ret();
        var w = new ByteWriter();
        a.Assemble(w, Code);
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
