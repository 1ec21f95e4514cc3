using Iced.Intel;
using Replayvisor.Engine.Cpu;
using static Iced.Intel.AssemblerRegisters;
using PM = Replayvisor.Engine.Tests.Cpu.ProtectedModeMachine;

namespace Replayvisor.Engine.Tests.Cpu;

/// <summary>Remembered block successors (and branches between compiled members) must not outlive a change of the code's translation, bytes or code segment.</summary>
public class BlockChainingTests
{
    private const uint Pd = 0x80000, Pt = 0x81000, Page3 = 0x202000, OtherFrame = 0x203000;

    private static PM TwoLevel(CpuTier bc)
    {
        var m = new PM(bc);
        m.Memory.Write32(Pd, Pt | 7);
        for (uint i = 0; i < 1024; i++) m.Memory.Write32(Pt + i * 4, (i << 12) | 7);
        m.Cpu.Cr3 = Pd;
        m.Cpu.Cr0 |= Cr0Bits.PG;
        m.Cpu.FlushTlb();
        return m;
    }

    [Theory]
    [InlineData(CpuTier.Compiled, true)]
    [InlineData(CpuTier.Compiled, false)]
    [InlineData(CpuTier.BlockCache, true)]
    [InlineData(CpuTier.BlockCache, false)]
    [InlineData(CpuTier.Interpreter, true)]
    public void CallTargetRemappedByInvlpgOrCr3Load(CpuTier bc, bool invlpg)
    {
        var m = TwoLevel(bc);
        m.Code(Page3, a => { a.mov(ebx, 1); a.ret(); });
        m.Code(OtherFrame, a => { a.mov(ebx, 2); a.ret(); });
        m.Load(a =>
        {
            var top = a.CreateLabel(); var skip = a.CreateLabel();
            a.xor(edi, edi);
            a.mov(ecx, 6);
            a.Label(ref top);
            a.call(Page3);
            a.add(edi, ebx);
            a.cmp(ecx, 4);
            a.jne(skip);
            a.mov(__dword_ptr[Pt + (Page3 >> 12) * 4], OtherFrame | 7);
            if (invlpg) a.invlpg(__dword_ptr[Page3]);
            else { a.mov(eax, cr3); a.mov(cr3, eax); }
            a.Label(ref skip);
            a.dec(ecx);
            a.jnz(top);
            a.@int(0x31);
        });
        m.Run();
        Assert.Equal(0x31, m.Event.Vector);
        Assert.Equal(3u * 1 + 3u * 2, m.Cpu.Edi);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void CallTargetRewrittenFromAnotherPage(CpuTier bc)
    {
        var m = TwoLevel(bc);
        m.Code(Page3, a => { a.mov(ebx, 1); a.ret(); });
        m.Load(a =>
        {
            var top = a.CreateLabel(); var skip = a.CreateLabel();
            a.xor(edi, edi);
            a.mov(ecx, 6);
            a.Label(ref top);
            a.call(Page3);
            a.add(edi, ebx);
            a.cmp(ecx, 4);
            a.jne(skip);
            a.mov(__dword_ptr[Page3 + 1], 5); // imm32 of mov ebx, 1
            a.Label(ref skip);
            a.dec(ecx);
            a.jnz(top);
            a.@int(0x31);
        });
        m.Run();
        Assert.Equal(0x31, m.Event.Vector);
        Assert.Equal(3u * 1 + 3u * 5, m.Cpu.Edi);
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
        TestMachine Run(CpuTier runTier, int compileThreshold)
        {
            var m = new TestMachine(blockCache: runTier).Load(code);
            m.Memory.WriteBytes(far, TestMachine.Assemble(a => { a.inc(ebx); a.inc(ebx); a.jmp(top); }, far));
            m.Cpu.CompileThreshold = compileThreshold;
            Assert.Equal(StopReason.InstructionLimit, m.Run(6 * 20));
            // Byte-granular limit at far + 1: both incs lie within it, the jmp after them does not.
            m.Cpu.Segs[Seg.CS] = SegmentCache.FromDescriptor(0x08, ProtectedModeMachine.Seg(0, far + 1, 0x9B, g: false));
            m.Run();
            return m;
        }
        var m = Run(tier, threshold);
        var reference = Run(CpuTier.Interpreter, 0);
        var e = Assert.Single(m.Host.Events);
        Assert.Equal(Vectors.GP, e.Vector);
        Assert.Equal(far + 2, e.InstructionEip);
        Assert.Equal(
            $"{reference.Cpu.Icount} {reference.Cpu.Eip:x8} {string.Join(",", reference.Cpu.Gpr)} {reference.Host.Events[0]}",
            $"{m.Cpu.Icount} {m.Cpu.Eip:x8} {string.Join(",", m.Cpu.Gpr)} {m.Host.Events[0]}");
    }
}
