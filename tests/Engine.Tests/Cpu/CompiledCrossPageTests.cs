using Iced.Intel;
using Replayvisor.Engine.Cpu;
using static Iced.Intel.AssemblerRegisters;
using PM = Replayvisor.Engine.Tests.Cpu.ProtectedModeMachine;

namespace Replayvisor.Engine.Tests.Cpu;

/// <summary>
/// Compiled regions take members from other pages and follow indirect transfers (call/jmp through a
/// register, ret) to the members they went to before (docs/compiled-tier.md, "Regions"). A branch
/// into such a member must reach exactly the block the run loop's fetch would: the TLB must map the
/// member's page to its frame now, and the CS limit must cover it.
/// </summary>
public class CompiledCrossPageTests
{
    private const uint Pd = 0x80000, Pt = 0x81000, FnB = 0x202000, OtherFrame = 0x203000, FnC = 0x204000;

    /// <summary>Paging on, the first 4 MiB identity-mapped; FnB's page holds mov ebx, 1; ret, OtherFrame mov ebx, 2; ret, FnC's mov ebx, 7; add ebx, ecx; ret.</summary>
    private static PM Paged(CpuTier tier, int threshold, Action<Assembler> loop)
    {
        var m = new PM(tier);
        m.Cpu.CompileThreshold = threshold;
        m.Memory.Write32(Pd, Pt | 7);
        for (uint i = 0; i < 1024; i++) m.Memory.Write32(Pt + i * 4, (i << 12) | 7);
        m.Cpu.Cr3 = Pd;
        m.Cpu.Cr0 |= Cr0Bits.PG;
        m.Cpu.FlushTlb();
        m.Code(FnB, a => { a.mov(ebx, 1); a.ret(); });
        m.Code(OtherFrame, a => { a.mov(ebx, 2); a.ret(); });
        m.Code(FnC, a => { a.mov(ebx, 7); a.add(ebx, ecx); a.ret(); });
        m.Load(loop);
        return m;
    }

    // top:  call esi; add edi, ebx; test ecx, 15; jnz skip
    //       xor esi, FnB ^ FnC                 (every 16th iteration: the other function)
    // skip: dec ecx; jnz top; int 0x31
    private static void IndirectLoop(Assembler a)
    {
        var top = a.CreateLabel(); var skip = a.CreateLabel();
        a.xor(edi, edi);
        a.mov(ecx, 80);
        a.mov(esi, FnB);
        a.Label(ref top);
        a.call(esi);
        a.add(edi, ebx);
        a.test(ecx, 15);
        a.jnz(skip);
        a.xor(esi, FnB ^ FnC);
        a.Label(ref skip);
        a.dec(ecx);
        a.jnz(top);
        a.@int(0x31);
    }

    // top: call FnB; add edi, ebx; mov eax, cr0; dec ecx; jnz top; int 0x31
    // (reading CR0 runs a handler that ends its member, so the run loop enters top's region every iteration)
    private static void DirectLoop(Assembler a)
    {
        var top = a.CreateLabel();
        a.xor(edi, edi);
        a.mov(ecx, 60);
        a.Label(ref top);
        a.call(FnB);
        a.add(edi, ebx);
        a.mov(eax, cr0);
        a.dec(ecx);
        a.jnz(top);
        a.@int(0x31);
    }

    private static readonly uint TopOfDirectLoop = PM.CodeBase + (uint)TestMachine.Assemble(a => { a.xor(edi, edi); a.mov(ecx, 60); }).Length;

    /// <summary>Whether some compiled region of the machine has a member outside its head's page.</summary>
    private static bool HasCrossPageMember(PM m)
    {
        foreach (uint eip in Enumerable.Range(0, 0x40).Select(o => PM.CodeBase + (uint)o).Concat([FnB, FnB + 5, FnC, FnC + 5, FnC + 7]))
        {
            var members = m.Cpu.Blocks.Lookup(eip, eip, true)?.Compiled?.Members;
            if (members != null && members.Any(b => b.Eip >> 12 != eip >> 12)) return true;
        }
        return false;
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(3)]
    public void IndirectCallsIntoOtherPagesFollowTheirTargetInsideOneRegion(int threshold)
    {
        var m = Paged(CpuTier.Compiled, threshold, IndirectLoop);
        m.Run();
        Assert.Equal(0x31, m.Event.Vector);
        Assert.True(HasCrossPageMember(m), "a region reaches the called function's page");
        var reference = Paged(CpuTier.Interpreter, 0, IndirectLoop);
        reference.Run();
        Assert.Equal(reference.Snapshot(), m.Snapshot());
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void IndirectLoopStopsAtEveryCountAsTheInterpreterDoes(int threshold)
    {
        var compiled = Paged(CpuTier.Compiled, threshold, IndirectLoop);
        var reference = Paged(CpuTier.Interpreter, 0, IndirectLoop);
        var rng = new Random(threshold);
        for (int step = 0; step < 400; step++)
        {
            ulong n = (ulong)rng.Next(1, 17);
            var rc = compiled.Run(n);
            var rr = reference.Run(n);
            Assert.Equal(rr, rc);
            Assert.Equal(reference.Snapshot(), compiled.Snapshot());
            if (rr != StopReason.InstructionLimit) break;
        }
    }

    /// <summary>
    /// The called page is remapped to another frame between two runs (page table entry and invlpg,
    /// from outside the guest): the region whose member is the old frame's block must leave for the
    /// run loop, which fetches the new frame's code, also once the new mapping is in the TLB.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void AMemberWhosePageNowMapsAnotherFrameIsNotRun(int threshold)
    {
        PM Run(CpuTier tier, int t)
        {
            var m = Paged(tier, t, DirectLoop);
            Assert.Equal(StopReason.InstructionLimit, m.Run(2 + 7 * 25)); // 25 iterations
            if (tier == CpuTier.Compiled) Assert.True(m.Cpu.Blocks.Lookup(TopOfDirectLoop, TopOfDirectLoop, true)?.Compiled?.Members.Any(b => b.Eip == FnB), "the loop's region has the called page's block");
            m.Memory.Write32(Pt + (FnB >> 12) * 4, OtherFrame | 7);
            m.Cpu.InvalidatePage(FnB);
            m.Run();
            return m;
        }
        var compiled = Run(CpuTier.Compiled, threshold);
        var reference = Run(CpuTier.Interpreter, 0);
        Assert.Equal(0x31, compiled.Event.Vector);
        Assert.Equal(25u * 1 + 35u * 2, compiled.Cpu.Edi);
        Assert.Equal(reference.Snapshot(), compiled.Snapshot());
    }

    /// <summary>
    /// CS's limit comes to end inside a block after it was cached, linked as a successor and made a
    /// member of a region: the run loop's fetch would not run that block whole (it raises #GP at the
    /// first instruction past the limit), so neither may a remembered successor link nor a branch
    /// inside the region.
    /// </summary>
    [Theory]
    [InlineData(CpuTier.BlockCache, 0)]
    [InlineData(CpuTier.Compiled, 0)]
    [InlineData(CpuTier.Compiled, 2)]
    public void ABlockPastANewCsLimitIsNotRunWhole(CpuTier tier, int threshold)
    {
        // top: inc eax; cmp eax, 1000; jb far; int3      far (top + 0x40): inc ebx; inc ebx; jmp top
        const uint top = TestMachine.CodeBase, far = top + 0x40;
        Action<Assembler> code = a =>
        {
            a.inc(eax);
            a.cmp(eax, 1000);
            a.jb(far);
            a.int3();
        };
        TestMachine Run(CpuTier tier, int t)
        {
            var m = new TestMachine(blockCache: tier).Load(code);
            m.Memory.WriteBytes(far, TestMachine.Assemble(a => { a.inc(ebx); a.inc(ebx); a.jmp(top); }, far));
            m.Cpu.CompileThreshold = t;
            Assert.Equal(StopReason.InstructionLimit, m.Run(6 * 20));
            // Byte-granular limit at far + 1: both incs lie within it, the jmp after them does not.
            m.Cpu.Segs[Seg.CS] = SegmentCache.FromDescriptor(0x08, PM.Seg(0, far + 1, 0x9B, g: false));
            m.Run();
            return m;
        }
        var compiled = Run(tier, threshold);
        var reference = Run(CpuTier.Interpreter, 0);
        var e = Assert.Single(compiled.Host.Events);
        Assert.Equal(Vectors.GP, e.Vector);
        Assert.Equal(far + 2, e.InstructionEip);
        Assert.Equal(
            $"{reference.Cpu.Icount} {reference.Cpu.Eip:x8} {string.Join(",", reference.Cpu.Gpr)} {reference.Host.Events[0]}",
            $"{compiled.Cpu.Icount} {compiled.Cpu.Eip:x8} {string.Join(",", compiled.Cpu.Gpr)} {compiled.Host.Events[0]}");
    }
}
