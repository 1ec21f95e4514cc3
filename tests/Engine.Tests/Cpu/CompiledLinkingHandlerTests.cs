using Iced.Intel;
using Replayvisor.Engine.Cpu;
using static Iced.Intel.AssemblerRegisters;

namespace Replayvisor.Engine.Tests.Cpu;

/// <summary>
/// Blocks whose untranslated instructions change nothing the run loop checks (Compiled/LinkingHandlers.cs:
/// mul, div, rol, bsf, cdq, cld; pushad/popad, push/pop of DS and ES, data segment loads, xchg and
/// lock-prefixed stores...) still link to the other members of their region, and the region still
/// ends exactly where the interpreter does, at a fault raised by such a handler included.
/// </summary>
public class CompiledLinkingHandlerTests
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
        Lockstep.RunAlike(compiled, reference, State, rng, 300, 23);
    }

    // top:  push ds; push es; pushad; mov eax, 0x50; mov es, eax; mov es:[esi+ecx*4], ecx; test ecx, 1; jnz odd
    //       xchg [esi], edx; lock and [esi+4], ecx; jmp join                               (even)
    // odd:  push dword [esi+8]; pop dword [esi+12]; lea edi, [esi+0x400]; stosd            (odd)
    // join: popad; pop es; pop ds; mov eax, es; add ebx, eax; mov edx, ds; add ebx, edx; dec ecx; jnz top
    //       then mov ds to a selector whose descriptor is not present: #NP
    private static ProtectedModeMachine SegmentMachine(CpuTier tier, int threshold)
    {
        var m = new ProtectedModeMachine(tier);
        m.SetGdt(10, ProtectedModeMachine.Seg(0x100, 0xFFFFF, 0x93));  // ES inside the loop: base 0x100
        m.SetGdt(11, ProtectedModeMachine.Seg(0, 0xFFFFF, 0x13));      // not present
        m.Load(a =>
        {
            var top = a.CreateLabel(); var odd = a.CreateLabel(); var join = a.CreateLabel();
            a.mov(ecx, 30);
            a.mov(esi, 0x30000);
            a.Label(ref top);
            a.push(ds);
            a.push(es);
            a.pushad();
            a.mov(eax, 0x50);
            a.mov(es, eax);
            a.mov(__dword_ptr.es[esi + ecx * 4], ecx);
            a.test(ecx, 1);
            a.jnz(odd);
            a.xchg(__dword_ptr[esi], edx);
            a.@lock.and(__dword_ptr[esi + 4], ecx);
            a.jmp(join);
            a.Label(ref odd);
            a.push(__dword_ptr[esi + 8]);
            a.pop(__dword_ptr[esi + 12]);
            a.lea(edi, __dword_ptr[esi + 0x400]);
            a.stosd();
            a.Label(ref join);
            a.popad();
            a.pop(es);
            a.pop(ds);
            a.mov(eax, es);
            a.add(ebx, eax);
            a.mov(edx, ds);
            a.add(ebx, edx);
            a.dec(ecx);
            a.jnz(top);
            a.mov(eax, 0x58);
            a.mov(ds, eax);
        });
        for (uint i = 0; i < 0x600; i += 4) m.Memory.Write32(0x30000 + i, 0x01000193u * i);
        m.Cpu.CompileThreshold = threshold;
        return m;
    }

    private static string State(ProtectedModeMachine m) =>
        m.Snapshot() + " data " + Convert.ToHexString(Enumerable.Range(0, 0x600).Select(i => m.Memory.Read8(0x30000 + (ulong)i)).ToArray());

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void SegmentLoadsAndStoresKeepTheLoopOneRegionEndingAtTheInterpretersFault(int threshold)
    {
        var m = SegmentMachine(CpuTier.Compiled, threshold);
        Assert.Equal(StopReason.Stopped, m.Run());
        uint top = ProtectedModeMachine.CodeBase + (uint)TestMachine.Assemble(a => { a.mov(ecx, 30); a.mov(esi, 0x30000); }, ProtectedModeMachine.CodeBase).Length;
        int members = m.Cpu.Blocks.Lookup(top, top, true)?.Compiled?.Members.Length ?? 0;
        Assert.True(members >= 3, $"the loop head heads a region of {members} blocks");
        Assert.Equal(Vectors.NP, m.Event.Vector);
        var reference = SegmentMachine(CpuTier.Interpreter, 0);
        Assert.Equal(StopReason.Stopped, reference.Run());
        Assert.Equal(State(reference), State(m));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public void SegmentLoopStopsAtEveryCountAsTheInterpreterDoes(int threshold)
    {
        var compiled = SegmentMachine(CpuTier.Compiled, threshold);
        var reference = SegmentMachine(CpuTier.Interpreter, 0);
        var rng = new Random(threshold + 100);
        for (int step = 0; step < 300; step++)
        {
            ulong n = (ulong)rng.Next(1, 29);
            var rc = compiled.Cpu.Run(compiled.Cpu.Icount + n);
            var rr = reference.Cpu.Run(reference.Cpu.Icount + n);
            Assert.Equal(rr, rc);
            Assert.Equal(State(reference), State(compiled));
            if (rr != StopReason.InstructionLimit) break;
        }
    }
}
