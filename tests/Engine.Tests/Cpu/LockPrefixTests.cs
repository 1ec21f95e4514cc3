using Replayvisor.Engine.Cpu;

namespace Replayvisor.Engine.Tests.Cpu;

/// <summary>LOCK is valid only on the read-modify-write instructions with a memory destination (SDM vol. 2 LOCK): else #UD.</summary>
public class LockPrefixTests
{
    private static TestMachine Run(params byte[] code)
    {
        var m = new TestMachine();
        m.Memory.WriteBytes(TestMachine.CodeBase, code);
        m.Memory.Write8(TestMachine.CodeBase + (uint)code.Length, 0xF4);
        m.Run();
        return m;
    }

    [Theory]
    [InlineData(new byte[] { 0xF0, 0x01, 0xC8 })]       // lock add eax, ecx
    [InlineData(new byte[] { 0xF0, 0x89, 0x08 })]       // lock mov [eax], ecx
    [InlineData(new byte[] { 0xF0, 0x90 })]             // lock nop
    [InlineData(new byte[] { 0xF0, 0x8B, 0x08 })]       // lock mov ecx, [eax]
    public void InvalidLockRaisesUd(byte[] code)
    {
        var m = Run(code);
        var e = Assert.Single(m.Host.Events);
        Assert.Equal(Vectors.UD, e.Vector);
        Assert.Equal(TestMachine.CodeBase, e.InstructionEip);
        Assert.Equal(0ul, m.Cpu.Icount);
    }

    [Theory]
    [InlineData(new byte[] { 0xF0, 0x01, 0x08 })]       // lock add [eax], ecx
    [InlineData(new byte[] { 0xF0, 0x0F, 0xC1, 0x08 })] // lock xadd [eax], ecx
    [InlineData(new byte[] { 0xF0, 0x87, 0x08 })]       // lock xchg [eax], ecx
    [InlineData(new byte[] { 0xF0, 0x0F, 0xAB, 0x08 })] // lock bts [eax], ecx
    public void ValidLockExecutes(byte[] code)
    {
        var m = new TestMachine();
        m.Cpu.Eax = 0x3000;
        m.Cpu.Ecx = 5;
        m.Memory.WriteBytes(TestMachine.CodeBase, code);
        m.Memory.Write8(TestMachine.CodeBase + (uint)code.Length, 0xF4);
        m.Run();
        Assert.Empty(m.Host.Events);
        Assert.NotEqual(0u, m.Memory.Read32(0x3000) | m.Cpu.Ecx);
        Assert.Equal(2ul, m.Cpu.Icount);
    }
}

/// <summary>On a P6-family CPU the F3 prefix on bsf/bsr is ignored (no tzcnt/lzcnt).</summary>
public class RepBsfTests
{
    [Theory]
    [InlineData(new byte[] { 0xF3, 0x0F, 0xBC, 0xC3 }, 0x50u, 4u)]   // rep bsf eax, ebx
    [InlineData(new byte[] { 0xF3, 0x0F, 0xBD, 0xC3 }, 0x50u, 6u)]   // rep bsr eax, ebx
    [InlineData(new byte[] { 0xF3, 0x0F, 0xBC, 0xC3 }, 0u, 0x1234u)] // zero source: destination unchanged
    public void RepBsfIsBsf(byte[] code, uint source, uint expected)
    {
        var m = new TestMachine();
        m.Cpu.Ebx = source;
        m.Cpu.Eax = 0x1234;
        m.Memory.WriteBytes(TestMachine.CodeBase, code);
        m.Memory.Write8(TestMachine.CodeBase + (uint)code.Length, 0xF4);
        m.Run();
        Assert.Empty(m.Host.Events);
        Assert.Equal(expected, m.Cpu.Eax);
        Assert.Equal(source == 0, m.Cpu.ZF);
    }
}
