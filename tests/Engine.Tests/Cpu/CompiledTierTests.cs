using Replayvisor.Engine.Cpu;
using static Iced.Intel.AssemblerRegisters;

namespace Replayvisor.Engine.Tests.Cpu;

/// <summary>The compiled tier keeps exact instruction counts and never changes a result, whatever its compile threshold.</summary>
public class CompiledTierTests
{
    /// <summary>A loop with loads, stores, a call and flags carried across blocks (as the bench's integer workload).</summary>
    private static TestMachine HotLoop(CpuTier tier, int threshold)
    {
        var m = new TestMachine(blockCache: tier).Load(a =>
        {
            var top = a.CreateLabel(); var fn = a.CreateLabel(); var skip = a.CreateLabel(); var done = a.CreateLabel();
            a.mov(esi, 0x20000);
            a.mov(ecx, 300);
            a.mov(ebx, 0x12345678);
            a.Label(ref top);
            a.mov(edx, __dword_ptr[esi + ecx * 4]);
            a.add(eax, edx);
            a.adc(ebx, eax);
            a.lea(edi, __dword_ptr[ebx + ecx * 2 + 7]);
            a.mov(__dword_ptr[esi + ecx * 4], edi);
            a.mov(__byte_ptr[esi + ecx + 0x800], bl);
            a.test(ecx, 3);
            a.jnz(skip);
            a.call(fn);
            a.Label(ref skip);
            a.dec(ecx);
            a.jnz(top);
            a.jmp(done);
            a.Label(ref fn);
            a.push(ebx);
            a.and(ebx, 0xFF);
            a.sub(eax, ebx);
            a.cmp(eax, 0x1000);
            a.setb(dl);
            a.movzx(edx, dl);
            a.sbb(eax, edx);
            a.pop(ebx);
            a.ret();
            a.Label(ref done);
        });
        m.Cpu.CompileThreshold = threshold;
        return m;
    }

    private static string State(TestMachine m) =>
        $"icount {m.Cpu.Icount} eip {m.Cpu.Eip:x8} eflags {m.Cpu.Eflags:x8} regs {string.Join(",", m.Cpu.Gpr.Select(r => r.ToString("x8")))} " +
        $"data {Convert.ToHexString(Enumerable.Range(0, 0x1000).Select(i => m.Memory.Read8(0x20000 + (ulong)i)).ToArray())}";

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(7)]
    public void StopsAtEveryRequestedCountAsTheBlockCacheDoes(int threshold)
    {
        var compiled = HotLoop(CpuTier.Compiled, threshold);
        var reference = HotLoop(CpuTier.BlockCache, 0);
        var rng = new Random(11);
        Lockstep.RunAlike(compiled, reference, State, rng, 400, 40);
        Assert.True(compiled.Cpu.BlocksCompiled + compiled.Cpu.CompiledCodeReused > 0, "nothing was compiled");
    }

    [Fact]
    public void EndsInTheSameStateWhateverTheThreshold()
    {
        string? first = null;
        foreach (int threshold in new[] { 0, 1, 3, 50, int.MaxValue })
        {
            var m = HotLoop(CpuTier.Compiled, threshold);
            Assert.Equal(StopReason.Stopped, m.Run(10_000_000));
            string s = State(m);
            first ??= s;
            Assert.Equal(first, s);
        }
        var b = HotLoop(CpuTier.BlockCache, 0);
        b.Run(10_000_000);
        Assert.Equal(first, State(b));
    }

    [Fact]
    public void AMachineReusesCodeCompiledInTheProcessUntilTheSharedCacheIsForgotten()
    {
        // A loop no other test runs (its constant), so no other test compiles or forgets its code meanwhile.
        TestMachine Loop() => new TestMachine(blockCache: CpuTier.Compiled).Load(a =>
        {
            var top = a.CreateLabel();
            a.mov(ecx, 500);
            a.Label(ref top);
            a.add(eax, 0x5ca1ab1e);
            a.rol(eax, 3);
            a.dec(ecx);
            a.jnz(top);
        });
        var first = Loop();
        first.Run();
        var second = Loop();
        second.Run();
        Assert.Equal(0L, second.Cpu.CompiledIlBytes);
        Assert.True(second.Cpu.CompiledCodeReused > 0, "the second machine compiled its loop again");
        Replayvisor.Engine.Cpu.Compiled.BlockCompiler.ForgetSharedCode();
        var third = Loop();
        third.Run();
        Assert.Equal(0L, third.Cpu.CompiledCodeReused);
        Assert.True(third.Cpu.CompiledIlBytes > 0, "the third machine found code in a forgotten cache");
        Assert.Equal((second.Cpu.Eax, second.Cpu.Icount), (third.Cpu.Eax, third.Cpu.Icount));
    }

    [Fact]
    public void ABlockBelowTheCompileThresholdTakesCodeAnotherMachineCompiledAndRunsTheSame()
    {
        // The loop's blocks run ~300 times: past the reuse threshold, short of the compile threshold.
        // Its constant is its own, so no other test compiles it or forgets the shared code meanwhile.
        TestMachine Loop(int compileThreshold)
        {
            var m = new TestMachine(blockCache: CpuTier.Compiled).Load(a =>
            {
                var top = a.CreateLabel(); var odd = a.CreateLabel(); var next = a.CreateLabel();
                a.mov(ecx, 300);
                a.Label(ref top);
                a.add(eax, 0x0dd5eed5);
                a.test(ecx, 1);
                a.jnz(odd);
                a.xor(ebx, eax);
                a.jmp(next);
                a.Label(ref odd);
                a.rol(eax, 5);
                a.Label(ref next);
                a.dec(ecx);
                a.jnz(top);
            });
            (m.Cpu.CompileThreshold, m.Cpu.ReuseThreshold) = (compileThreshold, 50);
            return m;
        }
        var cold = Loop(1000);
        cold.Run();
        Assert.Equal((0L, 0L), (cold.Cpu.BlocksCompiled, cold.Cpu.CompiledCodeReused));
        var compiles = Loop(0);
        compiles.Run();
        Assert.True(compiles.Cpu.BlocksCompiled + compiles.Cpu.CompiledCodeReused > 0, "nothing was compiled");
        var reuses = Loop(1000);
        reuses.Run();
        Assert.Equal(0L, reuses.Cpu.BlocksCompiled);
        Assert.True(reuses.Cpu.CompiledCodeReused > 0, "no block took the code compiled by the machine before");
        Assert.Equal(State(cold), State(reuses));
        Assert.Equal(State(cold), State(compiles));
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void FaultInTheMiddleOfABlockRetiresExactlyTheInstructionsBeforeIt(CpuTier tier)
    {
        // DS limited to 64 KiB: the load from 0x12345 faults (#GP(0)), after two increments and a store.
        var m = new TestMachine(blockCache: tier).Load(a =>
        {
            a.inc(eax);
            a.add(ebx, 5);
            a.mov(__dword_ptr[0x3000], ebx);
            a.cmp(ebx, 5);
            a.mov(ecx, __dword_ptr[0x12345]);
            a.inc(edx);
        });
        m.Cpu.Segs[Seg.DS] = SegmentCache.FromDescriptor(0x10, 0x0040_9300_0000_FFFFul);
        Assert.Equal(StopReason.Stopped, m.Run());
        Assert.Equal(4ul, m.Cpu.Icount);
        var e = Assert.Single(m.Host.Events);
        Assert.Equal(Vectors.GP, e.Vector);
        uint faultEip = TestMachine.CodeBase + (uint)TestMachine.Assemble(a => { a.inc(eax); a.add(ebx, 5); a.mov(__dword_ptr[0x3000], ebx); a.cmp(ebx, 5); }).Length;
        Assert.Equal(faultEip, e.InstructionEip);
        Assert.Equal(faultEip, m.Cpu.Eip);
        Assert.Equal((1u, 5u, 0u, 0u), (m.Cpu.Eax, m.Cpu.Ebx, m.Cpu.Ecx, m.Cpu.Edx));
        Assert.Equal(5u, m.Memory.Read32(0x3000));
        Assert.True(m.Cpu.ZF, "the cmp before the fault set ZF");
        if (tier == CpuTier.Compiled) Assert.True(m.Cpu.BlocksCompiled + m.Cpu.CompiledCodeReused > 0);
    }

    [Fact]
    public void AStoreIntoTheRunningCompiledBlockEndsItAfterTheStore()
    {
        // Four 5-byte instructions: the push writes the imm32 of the last one (CodeBase+0x10..0x13) before it runs.
        var m = new TestMachine(blockCache: CpuTier.Compiled).Load(a =>
        {
            a.mov(esp, TestMachine.CodeBase + 0x14); // the push below writes the imm32 of the last mov
            a.push(0x55667788);
            a.mov(ebx, 1);
            a.mov(eax, 0x01020304);
        });
        Assert.Equal(StopReason.Stopped, m.Run());
        Assert.Equal(0x55667788u, m.Cpu.Eax);
        Assert.Equal(1u, m.Cpu.Ebx);
        Assert.Equal(5ul, m.Cpu.Icount);
    }
}
