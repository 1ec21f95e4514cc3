using Replayvisor.Engine.Cpu;
using static Iced.Intel.AssemblerRegisters;

namespace Replayvisor.Engine.Tests.Cpu;

/// <summary>
/// Shifts, imul and one-operand mul translated by the compiled tier (lazy flags CcOp.Shl/Shr/Sar/Mul) give the
/// interpreter's registers, memory, flags and counts at every stop, including a shift by CL = 0
/// that must leave the flags of the instruction before it (SDM vol. 2 SAL/SAR/SHL/SHR: a count of
/// 0 affects no flag).
/// </summary>
public class CompiledShiftMulTests
{
    /// <summary>A checksum-like loop: shifts by immediates and by CL (0-39, so 0 and counts past 31 too), imul in both forms, flags read after each.</summary>
    private static TestMachine Loop(CpuTier tier)
    {
        var m = new TestMachine(blockCache: tier).Load(a =>
        {
            var top = a.CreateLabel(); var skip = a.CreateLabel();
            a.mov(esi, 0x20000);
            a.mov(edi, 400);
            a.mov(eax, 0x9E3779B9);
            a.mov(ebx, 0x7F4A7C15);
            a.mov(edx, 0x80000001);
            a.Label(ref top);
            a.mov(ecx, edi);
            a.and(ecx, 0x27);                          // CL 0..39
            a.add(eax, ebx);                           // flags the CL = 0 shift must keep
            a.shl(edx, cl);
            a.setc(__byte_ptr[esi + edi + 0x1000]);
            a.seto(__byte_ptr[esi + edi + 0x1400]);
            a.adc(ebx, 0);
            a.sar(eax, 3);
            a.sets(__byte_ptr[esi + edi + 0x1800]);
            a.cmp(ecx, 7);
            a.shr(ebx, cl);
            a.setp(__byte_ptr[esi + edi + 0x1C00]);
            a.seta(__byte_ptr[esi + edi + 0x2000]);
            a.imul(eax, ebx, 0x01000193);              // FNV-style multiply: overflows most of the time
            a.seto(__byte_ptr[esi + edi + 0x2400]);
            a.imul(edx, __dword_ptr[esi + edi * 4]);
            a.setc(__byte_ptr[esi + edi + 0x2800]);
            a.shl(__dword_ptr[esi + edi * 4], 5);
            a.setb(__byte_ptr[esi + edi + 0x2C00]);
            a.sar(__word_ptr[esi + edi * 2 + 0x3000], 9);
            a.setl(__byte_ptr[esi + edi + 0x3400]);
            a.shr(dh, 1);
            a.setg(__byte_ptr[esi + edi + 0x3800]);
            a.mul(ebx);                                // EDX:EAX, unsigned
            a.seto(__byte_ptr[esi + edi + 0x3C00]);
            a.imul(__dword_ptr[esi + edi * 4]);        // EDX:EAX, signed, from memory
            a.setc(__byte_ptr[esi + edi + 0x4800]);
            a.sets(__byte_ptr[esi + edi + 0x4C00]);
            a.mov(ecx, edi);
            a.and(ecx, 3);
            a.imul(ecx);                               // small factors: no overflow
            a.setno(__byte_ptr[esi + edi + 0x4A00]);
            a.mul(__dword_ptr[esi + edi * 4 + 4]);
            a.adc(ebx, edx);
            a.imul(cx, dx, -3);
            a.jo(skip);
            a.sal(bl, cl);
            a.Label(ref skip);
            a.xor(eax, edx);
            a.xor(ebx, ecx);
            a.sar(eax, cl);
            a.pushfd();
            a.pop(__dword_ptr[esi + edi * 4 + 0x4000]);
            a.dec(edi);
            a.jnz(top);
        });
        for (uint i = 0; i < 0x1000; i += 4) m.Memory.Write32(0x20000 + i, 0x2545F491u * (i + 1) ^ (i << 7));
        m.Cpu.CompileThreshold = 0;
        return m;
    }

    private static string State(TestMachine m) =>
        $"icount {m.Cpu.Icount} eip {m.Cpu.Eip:x8} eflags {m.Cpu.Eflags:x8} regs {string.Join(",", m.Cpu.Gpr.Select(r => r.ToString("x8")))} " +
        $"data {Convert.ToHexString(Enumerable.Range(0, 0x5000).Select(i => m.Memory.Read8(0x20000 + (ulong)i)).ToArray())}";

    [Fact]
    public void EndsInTheInterpretersState()
    {
        var compiled = Loop(CpuTier.Compiled);
        var reference = Loop(CpuTier.Interpreter);
        Assert.Equal(StopReason.Stopped, compiled.Run(10_000_000));
        Assert.Equal(StopReason.Stopped, reference.Run(10_000_000));
        Assert.Equal(State(reference), State(compiled));
        Assert.True(compiled.Cpu.BlocksCompiled > 0, "nothing was compiled");
    }

    [Fact]
    public void StopsAtEveryRequestedCountInTheInterpretersState()
    {
        var compiled = Loop(CpuTier.Compiled);
        var reference = Loop(CpuTier.Interpreter);
        var rng = new Random(23);
        Lockstep.RunAlike(compiled, reference, State, rng, 600, 45);
    }
}
