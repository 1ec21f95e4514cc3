using Iced.Intel;
using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Memory;

namespace Replayvisor.Engine.Tests.Cpu;

/// <summary>A host that records every delivered event and stops the CPU at the first one.</summary>
public sealed class RecordingHost : ICpuHost
{
    public List<CpuEvent> Events { get; } = new();
    public bool StopOnEvent { get; set; } = true;
    public ulong Tsc { get; set; } = 0x1234_5678_9ABC;
    public int Halts { get; private set; }

    public void Deliver(X86Cpu cpu, in CpuEvent e)
    {
        Events.Add(e);
        if (StopOnEvent) cpu.RequestStop();
    }

    public void Halt(X86Cpu cpu) { Halts++; cpu.RequestStop(); }
    public ulong ReadTsc(X86Cpu cpu) => Tsc;

    public void Cpuid(X86Cpu cpu, uint leaf, uint subleaf, out uint eax, out uint ebx, out uint ecx, out uint edx)
    {
        eax = leaf; ebx = subleaf; ecx = 0x6c65746e; edx = 0x49656e69;
    }

    public uint PortIn(X86Cpu cpu, ushort port, int size) => 0xFFFFFFFF;
    public void PortOut(X86Cpu cpu, ushort port, int size, uint value) { }
    public bool ReadMsr(X86Cpu cpu, uint msr, out ulong value) { value = 0; return false; }
    public bool WriteMsr(X86Cpu cpu, uint msr, ulong value) => false;
}

/// <summary>A flat ring-0 machine with code assembled by Iced at a fixed address.</summary>
public sealed class TestMachine
{
    public const uint CodeBase = 0x1000;
    public const uint StackTop = 0x80000;

    public PhysicalMemory Memory { get; }
    public X86Cpu Cpu { get; }
    public RecordingHost Host { get; } = new();
    public uint CodeEnd { get; private set; }

    public TestMachine(uint frames = 256, CpuTier blockCache = CpuTier.BlockCache)
    {
        Memory = new PhysicalMemory(frames);
        Cpu = new X86Cpu(Memory, Host) { Tier = blockCache, CompileThreshold = 0 };
        Cpu.Esp = StackTop;
        Cpu.Eip = CodeBase;
    }

    public static byte[] Assemble(Action<Assembler> build, uint at = CodeBase)
    {
        var a = new Assembler(32);
        build(a);
        var w = new CodeWriterImpl();
        a.Assemble(w, at);
        return w.ToArray();
    }

    /// <summary>Assembles code at CodeBase followed by hlt, and loads it.</summary>
    public TestMachine Load(Action<Assembler> build)
    {
        byte[] code = Assemble(a => { build(a); a.hlt(); });
        Memory.WriteBytes(CodeBase, code);
        CodeEnd = CodeBase + (uint)code.Length;
        return this;
    }

    public StopReason Run(ulong max = 1_000_000) => Cpu.Run(Cpu.Icount + max);

    private sealed class CodeWriterImpl : CodeWriter
    {
        private readonly List<byte> _bytes = new();
        public override void WriteByte(byte value) => _bytes.Add(value);
        public byte[] ToArray() => _bytes.ToArray();
    }
}
