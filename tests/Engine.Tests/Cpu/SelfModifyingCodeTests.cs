using Replayvisor.Engine.Cpu;
using static Iced.Intel.AssemblerRegisters;

namespace Replayvisor.Engine.Tests.Cpu;

/// <summary>Stores into decoded code are caught at 64-byte-line granularity; data next to code stays cached.</summary>
public class SelfModifyingCodeTests
{
    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void StoreIntoNextInstructionOfSameBlockTakesEffect(CpuTier blockCache)
    {
        uint target = TestMachine.CodeBase + (uint)TestMachine.Assemble(a => { a.mov(eax, 0); a.mov(ebx, 7); a.mov(__byte_ptr[0x12345678], 0x2A); }).Length + 2;
        var m = new TestMachine(blockCache: blockCache).Load(a =>
        {
            a.mov(eax, 0);
            a.mov(ebx, 7);
            a.mov(__byte_ptr[target], 0x2A); // imm8 of "add eax, imm8" below
            a.db(0x83, 0xC0, 0x01); // add eax, 1
            a.add(eax, ebx);
        });
        Assert.Equal(0x01, m.Memory.Read8(target));
        Assert.Equal(StopReason.Stopped, m.Run());
        Assert.Equal(0x2Au + 7, m.Cpu.Eax);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void PatchedLoopBodyIsRedecoded(CpuTier blockCache)
    {
        // The loop body runs twice; between the runs the store rewrites its immediate.
        var m = new TestMachine(blockCache: blockCache).Load(a =>
        {
            var body = a.CreateLabel(); var done = a.CreateLabel();
            a.mov(eax, 0);
            a.mov(ecx, 2);
            a.Label(ref body);
            a.db(0x05, 0x11, 0x11, 0x11, 0x11); // add eax, 0x11111111
            a.dec(ecx);
            a.jz(done);
            a.mov(__dword_ptr[TestMachine.CodeBase + 11], 0x22222222); // imm32 of the add (5 + 5 + 1)
            a.jmp(body);
            a.Label(ref done);
        });
        Assert.Equal(0x11111111u, m.Memory.Read32(TestMachine.CodeBase + 11));
        Assert.Equal(StopReason.Stopped, m.Run());
        Assert.Equal(0x33333333u, m.Cpu.Eax);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void DataOnCodePageDoesNotInvalidateBlocks(CpuTier blockCache)
    {
        const uint var0 = TestMachine.CodeBase + 0xF00;
        var m = new TestMachine(blockCache: blockCache).Load(a =>
        {
            var top = a.CreateLabel();
            a.mov(ecx, 1000);
            a.Label(ref top);
            a.add(__dword_ptr[var0], ecx);
            a.inc(__dword_ptr[var0 + 4]);
            a.mov(__dword_ptr[var0 + 8], ecx);
            a.dec(ecx);
            a.jnz(top);
        });
        Assert.Equal(StopReason.Stopped, m.Run());
        Assert.Equal(500500u, m.Memory.Read32(var0));
        Assert.Equal(1000u, m.Memory.Read32(var0 + 4));
        Assert.Equal(1u, m.Memory.Read32(var0 + 8));
        if (blockCache != CpuTier.Interpreter) Assert.True(m.Cpu.Blocks.BlocksDecoded < 10, $"{m.Cpu.Blocks.BlocksDecoded} blocks decoded");
    }

    [Fact]
    public void StoreToCodeLineFromOtherPageCodeInvalidates()
    {
        // Code at 0x1000 calls a routine at 0x3000 twice; in between, it rewrites the routine's immediate.
        var m = new TestMachine();
        byte[] routine = TestMachine.Assemble(a => { a.mov(ebx, 5); a.ret(); }, 0x3000);
        m.Memory.WriteBytes(0x3000, routine);
        m.Load(a =>
        {
            a.mov(esi, 0x3000u);
            a.call(esi);
            a.mov(edx, ebx);
            a.mov(__dword_ptr[0x3001], 9);
            a.call(esi);
        });
        Assert.Equal(StopReason.Stopped, m.Run());
        Assert.Equal(5u, m.Cpu.Edx);
        Assert.Equal(9u, m.Cpu.Ebx);
    }
}

/// <summary>Instructions that cross a page boundary are decoded from both pages every time they run.</summary>
public class PageCrossingInstructionTests
{
    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void LoopWithStraddlingInstructionSeesRewrittenTail(CpuTier blockCache)
    {
        const uint at = 0x1FFD; // "add eax, imm32" (05 imm32) spans 0x1FFD..0x2001
        var m = new TestMachine(blockCache: blockCache);
        byte[] body = TestMachine.Assemble(a =>
        {
            var top = a.CreateLabel(); var done = a.CreateLabel();
            a.Label(ref top);
            a.db(0x05, 0x01, 0x00, 0x00, 0x00); // add eax, 1
            a.dec(ecx);
            a.jz(done);
            a.cmp(ecx, 5);
            a.jne(top);
            a.mov(__byte_ptr[at + 4], 0x10); // high byte of the immediate, on the second page: now 0x10000001
            a.jmp(top);
            a.Label(ref done);
            a.hlt();
        }, at);
        m.Memory.WriteBytes(at, body);
        m.Load(a => { a.xor(eax, eax); a.mov(ecx, 10); a.jmp(at); });
        Assert.Equal(StopReason.Stopped, m.Run());
        Assert.Equal(5u * 1 + 5u * 0x10000001, m.Cpu.Eax);
    }
}
