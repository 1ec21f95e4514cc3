using Iced.Intel;
using Replayvisor.Engine.Cpu;
using static Iced.Intel.AssemblerRegisters;

namespace Replayvisor.Engine.Tests.Cpu;

/// <summary>
/// Blocks whose untranslated instructions only compute into registers and flags
/// (Compiled/PureHandlers.cs: mul, div, rol, bsf, cdq, cld...) still link to the other members of
/// their region, and the region still ends exactly where the interpreter does, at a #DE raised by
/// such a handler in its last block included.
/// </summary>
public class CompiledPureHandlerTests
{
    // top:  mov eax, edi; mul ebx; rol eax, 7; test ecx, 1; jnz odd     (A)
    //       bsf edx, eax; cdq; jmp join                                  (B, even)
    // odd:  imul edx; cld                                                (C, odd, falls into join)
    // join: add edi, eax; xor edx, edx; mov eax, edi; div ecx;
    //       add ebx, edx; dec ecx; jmp top                               (D: #DE once ecx reaches 0)
    private static void Loop(Assembler a)
    {
        var top = a.CreateLabel(); var odd = a.CreateLabel(); var join = a.CreateLabel();
        a.mov(ecx, 40);
        a.mov(ebx, 0x9E3779B1);
        a.mov(edi, 0x12345);
        a.Label(ref top);
        a.mov(eax, edi);
        a.mul(ebx);
        a.rol(eax, 7);
        a.test(ecx, 1);
        a.jnz(odd);
        a.bsf(edx, eax);
        a.cdq();
        a.jmp(join);
        a.Label(ref odd);
        a.imul(edx);
        a.cld();
        a.Label(ref join);
        a.add(edi, eax);
        a.xor(edx, edx);
        a.mov(eax, edi);
        a.div(ecx);
        a.add(ebx, edx);
        a.dec(ecx);
        a.jmp(top);
    }

    private static TestMachine Machine(CpuTier tier, int threshold)
    {
        var m = new TestMachine(blockCache: tier).Load(Loop);
        m.Cpu.CompileThreshold = threshold;
        return m;
    }

    private static string State(TestMachine m) =>
        $"icount {m.Cpu.Icount} eip {m.Cpu.Eip:x8} eflags {m.Cpu.Eflags:x8} regs {string.Join(",", m.Cpu.Gpr.Select(r => r.ToString("x8")))} " +
        $"events {string.Join(",", m.Host.Events.Select(e => $"{e.Vector}@{e.InstructionEip:x8}"))}";

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void TheLoopIsOneRegionAndEndsAtTheInterpretersDivideError(int threshold)
    {
        var m = Machine(CpuTier.Compiled, threshold);
        Assert.Equal(StopReason.Stopped, m.Run());
        uint top = TestMachine.CodeBase + (uint)TestMachine.Assemble(a => { a.mov(ecx, 40); a.mov(ebx, 0x9E3779B1); a.mov(edi, 0x12345); }).Length;
        int members = m.Cpu.Blocks.Lookup(top, top, true)?.Compiled?.Members.Length ?? 0;
        Assert.True(members >= 3, $"the loop head heads a region of {members} blocks");
        var e = Assert.Single(m.Host.Events);
        Assert.Equal(Vectors.DE, e.Vector);
        Assert.Equal(0u, m.Cpu.Ecx);
        var reference = Machine(CpuTier.Interpreter, 0);
        Assert.Equal(StopReason.Stopped, reference.Run());
        Assert.Equal(State(reference), State(m));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public void StopsAtEveryCountAsTheInterpreterDoes(int threshold)
    {
        var compiled = Machine(CpuTier.Compiled, threshold);
        var reference = Machine(CpuTier.Interpreter, 0);
        var rng = new Random(threshold);
        for (int step = 0; step < 300; step++)
        {
            ulong n = (ulong)rng.Next(1, 23);
            var rc = compiled.Run(n);
            var rr = reference.Run(n);
            Assert.Equal(rr, rc);
            Assert.Equal(State(reference), State(compiled));
            if (rr != StopReason.InstructionLimit) break;
        }
    }
}
