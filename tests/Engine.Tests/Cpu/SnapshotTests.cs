using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.State;
using static Iced.Intel.AssemblerRegisters;

namespace Replayvisor.Engine.Tests.Cpu;

public class SnapshotTests
{
    private static TestMachine Workload() => new TestMachine().Load(a =>
    {
        var top = a.CreateLabel();
        a.mov(ecx, 100000);
        a.Label(ref top);
        a.add(eax, ecx);
        a.xor(__dword_ptr[ecx * 4 + 0x3000], eax);
        a.and(ecx, 0x3FFF);
        a.dec(ecx);
        a.jnz(top);
    });

    private static byte[] Hash(TestMachine m)
    {
        var w = new CanonicalWriter();
        m.Cpu.WriteState(w);
        m.Memory.WriteState(w);
        return w.Finish();
    }

    [Fact]
    public void ResumedRunContinuesIdentically()
    {
        var m = Workload();
        m.Cpu.Run(5_000);
        var snap = m.Cpu.Snapshot();
        var ram = m.Memory.SnapshotBytes();
        m.Cpu.Run(20_000);
        byte[] first = Hash(m);

        m.Memory.RestoreBytes(ram);
        m.Cpu.Restore(snap);
        Assert.Equal(5_000ul, m.Cpu.Icount);
        m.Cpu.Run(20_000);
        Assert.Equal(first, Hash(m));
    }

    [Fact]
    public void HashDependsOnEveryRegisterAndMemory()
    {
        var m = Workload();
        byte[] h0 = Hash(m);
        m.Cpu.Edi ^= 1;
        byte[] h1 = Hash(m);
        Assert.NotEqual(h0, h1);
        m.Cpu.Edi ^= 1;
        Assert.Equal(h0, Hash(m));
        m.Memory.Write8(0x7000, 1);
        Assert.NotEqual(h0, Hash(m));
    }

    [Fact]
    public void InterpreterAndBlockCacheAgree()
    {
        var a = Workload();
        var b = new TestMachine(blockCache: CpuTier.Interpreter);
        b.Memory.RestoreBytes(a.Memory.SnapshotBytes());
        b.Cpu.Restore(a.Cpu.Snapshot());
        a.Cpu.Run(30_000);
        b.Cpu.Run(30_000);
        Assert.Equal(Hash(a), Hash(b));
    }
}
