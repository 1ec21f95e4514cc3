using Replayvisor.Engine.Cpu;
using static Iced.Intel.AssemblerRegisters;
using PM = Replayvisor.Engine.Tests.Cpu.ProtectedModeMachine;

namespace Replayvisor.Engine.Tests.Cpu;

/// <summary>Remembered block successors must not outlive a change of the code's translation or bytes.</summary>
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
}
