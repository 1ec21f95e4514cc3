using Replayvisor.Engine.Cpu;
using static Iced.Intel.AssemblerRegisters;

namespace Replayvisor.Engine.Tests.Cpu;

public class SmokeTests
{
    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void LoopSumsAndCounts(CpuTier blockCache)
    {
        var m = new TestMachine(blockCache: blockCache).Load(a =>
        {
            var top = a.CreateLabel();
            a.mov(eax, 0);
            a.mov(ecx, 100);
            a.Label(ref top);
            a.add(eax, ecx);
            a.dec(ecx);
            a.jnz(top);
            a.mov(__dword_ptr[0x2000], eax);
        });
        Assert.Equal(StopReason.Stopped, m.Run());
        Assert.Equal(5050u, m.Cpu.Eax);
        Assert.Equal(5050u, m.Memory.Read32(0x2000));
        Assert.Equal(1, m.Host.Halts);
        // 2 movs + 100 * 3 loop instructions + mov + hlt
        Assert.Equal(2ul + 300 + 1 + 1, m.Cpu.Icount);
    }

    [Fact]
    public void StopsAtExactCount()
    {
        var m = new TestMachine().Load(a =>
        {
            var top = a.CreateLabel();
            a.mov(ecx, 1000);
            a.Label(ref top);
            a.dec(ecx);
            a.jnz(top);
        });
        Assert.Equal(StopReason.InstructionLimit, m.Cpu.Run(7));
        Assert.Equal(7ul, m.Cpu.Icount);
        // mov, then (dec, jnz) x3: ecx decremented 3 times
        Assert.Equal(997u, m.Cpu.Ecx);
    }
}
