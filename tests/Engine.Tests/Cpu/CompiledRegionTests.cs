using Iced.Intel;
using Replayvisor.Engine.Cpu;
using static Iced.Intel.AssemblerRegisters;

namespace Replayvisor.Engine.Tests.Cpu;

/// <summary>
/// Compiled regions (a hot block compiled with the blocks of its page it branches to, one method,
/// docs/compiled-tier.md "Regions") end exactly where the block cache would: faults in a later
/// block, stores into a later block, stop counts anywhere in the region.
/// </summary>
public class CompiledRegionTests
{
    private static TestMachine Machine(CpuTier tier, int threshold, Action<Assembler> code)
    {
        var m = new TestMachine(blockCache: tier).Load(code);
        m.Cpu.CompileThreshold = threshold;
        return m;
    }

    private static string State(TestMachine m) =>
        $"icount {m.Cpu.Icount} eip {m.Cpu.Eip:x8} eflags {m.Cpu.Eflags:x8} regs {string.Join(",", m.Cpu.Gpr.Select(r => r.ToString("x8")))} " +
        $"events {string.Join(",", m.Host.Events.Select(e => $"{e.Vector}@{e.InstructionEip:x8}"))} " +
        $"code {Convert.ToHexString(Enumerable.Range(0, 0x100).Select(i => m.Memory.Read8(TestMachine.CodeBase + (ulong)i)).ToArray())}";

    /// <summary>The members of the region headed by the cached block at eip (none if it heads no compiled region).</summary>
    private static uint[] RegionAt(TestMachine m, uint eip) =>
        m.Cpu.Blocks.Lookup(eip, eip, true)?.Compiled?.Members.Select(b => b.Eip).ToArray() ?? [];

    private static uint Address(Action<Assembler> prefix) => TestMachine.CodeBase + (uint)TestMachine.Assemble(prefix).Length;

    // top: add eax, ecx; test ecx, 1; jnz odd          (block A)
    //      inc ebx; jmp join                           (block B, the even path)
    // odd: dec edx                                     (block C, falls into join)
    // join: mov edi, [esi+ecx*4]; inc ecx; jmp top     (block D: #GP once esi+ecx*4 passes DS's 64 KiB limit)
    private static void FaultLoop(Assembler a)
    {
        var top = a.CreateLabel(); var odd = a.CreateLabel(); var join = a.CreateLabel();
        a.mov(esi, 0xFF00);
        a.xor(ecx, ecx);
        a.Label(ref top);
        a.add(eax, ecx);
        a.test(ecx, 1);
        a.jnz(odd);
        a.inc(ebx);
        a.jmp(join);
        a.Label(ref odd);
        a.dec(edx);
        a.Label(ref join);
        a.mov(edi, __dword_ptr[esi + ecx * 4]);
        a.inc(ecx);
        a.jmp(top);
    }

    private static TestMachine FaultMachine(CpuTier tier, int threshold)
    {
        var m = Machine(tier, threshold, FaultLoop);
        m.Cpu.Segs[Seg.DS] = SegmentCache.FromDescriptor(0x10, 0x0040_9300_0000_FFFFul);
        return m;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void AFaultInTheThirdBlockOfARegionRetiresExactlyTheInstructionsBeforeIt(int threshold)
    {
        var m = FaultMachine(CpuTier.Compiled, threshold);
        Assert.Equal(StopReason.Stopped, m.Run());
        uint top = Address(a => { a.mov(esi, 0xFF00); a.xor(ecx, ecx); });
        Assert.True(RegionAt(m, top).Length >= 3, $"the loop head heads a region of {RegionAt(m, top).Length} blocks");
        // The load faults at ecx = 64 (0xFF00 + 64 * 4 = 0x10000), on the even path: head, then B, then D.
        var e = Assert.Single(m.Host.Events);
        Assert.Equal(Vectors.GP, e.Vector);
        Assert.Equal(64u, m.Cpu.Ecx);
        ulong perIteration = 3 + 2 + 3; // A, B or C, D (C's dec replaces B's inc; jmp)
        ulong expected = 2 + 64 * perIteration - 32 /* odd iterations skip B's jmp */ + 3 /* A */ + 2 /* B */;
        Assert.Equal(expected, m.Cpu.Icount);
        Assert.Equal(e.InstructionEip, m.Cpu.Eip);
        var reference = FaultMachine(CpuTier.Interpreter, 0);
        reference.Run();
        Assert.Equal(State(reference), State(m));
    }

    // top:  call fn                                       (block A)
    // back: mov ebp, esi; leave; mov esp, 0x8000; add esi, 0x10; jmp top   (block C, the return address:
    //       leave reads SS:[esi], which passes SS's 64 KiB limit at esi = 0x10000)
    // fn:   push ebp; mov ebp, esp; push ebx; add ebx, esi; pop ebx; leave; ret   (block B)
    private static void LeaveLoop(Assembler a)
    {
        var top = a.CreateLabel(); var fn = a.CreateLabel();
        a.mov(esp, 0x8000);
        a.mov(esi, 0xFE00);
        a.Label(ref top);
        a.call(fn);
        a.mov(ebp, esi);
        a.leave();
        a.mov(esp, 0x8000);
        a.add(esi, 0x10);
        a.jmp(top);
        a.Label(ref fn);
        a.push(ebp);
        a.mov(ebp, esp);
        a.push(ebx);
        a.add(ebx, esi);
        a.pop(ebx);
        a.leave();
        a.ret();
    }

    private static TestMachine LeaveMachine(CpuTier tier, int threshold)
    {
        var m = Machine(tier, threshold, LeaveLoop);
        m.Cpu.Segs[Seg.SS] = SegmentCache.FromDescriptor(0x10, 0x0040_9300_0000_FFFFul);
        return m;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void ALeaveThatFaultsAfterARetInsideTheRegionRetiresExactly(int threshold)
    {
        var m = LeaveMachine(CpuTier.Compiled, threshold);
        Assert.Equal(StopReason.Stopped, m.Run());
        // The loop runs in one region (headed by whichever of its blocks got hot first), the ret branching inside it.
        uint top = Address(a => { a.mov(esp, 0x8000); a.mov(esi, 0xFE00); });
        uint back = Address(a => { var l = a.CreateLabel(); a.mov(esp, 0x8000); a.mov(esi, 0xFE00); a.call(l); a.Label(ref l); a.nop(); }) - 1;
        Assert.Equal(3, Math.Max(RegionAt(m, top).Length, RegionAt(m, back).Length));
        var e = Assert.Single(m.Host.Events);
        Assert.Equal(Vectors.SS, e.Vector);
        Assert.Equal(0x10000u, m.Cpu.Esi);
        Assert.Equal(2 + 32 * (1 + 7 + 5) + 1 + 7 + 1ul, m.Cpu.Icount); // 32 whole iterations, then call, fn, mov ebp
        var reference = LeaveMachine(CpuTier.Interpreter, 0);
        reference.Run();
        Assert.Equal(State(reference), State(m));
    }

    // A loop whose head region comes to include the block that patches another member's immediate
    // (add ebx, imm32 at work): the stores land while that region runs, by a translated mov or by a
    // handler (stosd).
    private static readonly uint Work = Address(a => { var l = a.CreateLabel(); a.mov(ecx, 60); a.dec(ecx); a.jz(l); a.test(ecx, 7); a.jz(l); a.Label(ref l); a.nop(); }) - 1;

    private static Action<Assembler> PatchLoop(bool byHandler) => a =>
    {
        var top = a.CreateLabel(); var work = a.CreateLabel(); var patch = a.CreateLabel(); var done = a.CreateLabel();
        a.mov(ecx, 60);
        a.Label(ref top);
        a.dec(ecx);
        a.jz(done);
        a.test(ecx, 7);
        a.jz(patch);
        a.Label(ref work); // at Work: every branch before it is short
        a.add(ebx, 0x11111111);
        a.jmp(top);
        a.Label(ref patch);
        if (byHandler)
        {
            a.mov(edi, Work + 2);
            a.mov(eax, ecx);
            a.stosd();
        }
        else
        {
            a.mov(edi, Work);
            a.mov(__dword_ptr[edi + 2], ecx);
        }
        a.jmp(work);
        a.Label(ref done);
    };

    [Theory]
    [InlineData(false, 1)]
    [InlineData(false, 2)]
    [InlineData(true, 1)]
    [InlineData(true, 2)]
    public void AStoreIntoALaterBlockOfTheRunningRegionIsSeenByItsNextRun(bool byHandler, int threshold)
    {
        var m = Machine(CpuTier.Compiled, threshold, PatchLoop(byHandler));
        Assert.Equal(StopReason.Stopped, m.Run());
        var reference = Machine(CpuTier.Interpreter, 0, PatchLoop(byHandler));
        reference.Run();
        Assert.Equal(State(reference), State(m));
        // Each patch wrote ecx (56, 48, ... 8) as the immediate, added from then on.
        uint ebx = 0x11111111u * 3; // ecx 59..57, before the first patch
        for (uint c = 56; c >= 1; c--) ebx += (c + 7) / 8 * 8;
        Assert.Equal(ebx, m.Cpu.Ebx);
        // By the end the loop head's region is head, test/jz, work and patch: the later patches ran inside it.
        uint top = Address(a => a.mov(ecx, 60));
        Assert.Equal(4, RegionAt(m, top).Length);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public void StopsAtEveryCountInsideARegionAsTheInterpreterDoes(int threshold)
    {
        foreach (var (code, limited) in new[] { (FaultLoop, Seg.DS), (LeaveLoop, Seg.SS), (PatchLoop(false), -1), (PatchLoop(true), -1) })
        {
            var compiled = Machine(CpuTier.Compiled, threshold, code);
            var reference = Machine(CpuTier.Interpreter, 0, code);
            if (limited >= 0)
                foreach (var x in new[] { compiled, reference }) x.Cpu.Segs[limited] = SegmentCache.FromDescriptor(0x10, 0x0040_9300_0000_FFFFul);
            var rng = new Random(threshold);
            Lockstep.RunAlike(compiled, reference, State, rng, 300, 23);
        }
    }

    // top: mov eax, [esi]; add [esi+0x10], eax; push eax; pop edx; add esi, 0x1FD; inc ecx; cmp ecx, 300; jb top
    // The loads and the read-modify-write cross a page whenever esi & 0xFFF passes 0xFFC (or 0xFEC):
    // off the compiled tier's inline path, so the region leaves at that instruction and the block
    // cache runs the rest of the block (docs/compiled-tier.md, "Inline TLB hit").
    private static void CrossLoop(Assembler a)
    {
        var top = a.CreateLabel();
        a.mov(esi, 0x20F00);
        a.xor(ecx, ecx);
        a.Label(ref top);
        a.mov(eax, __dword_ptr[esi]);
        a.add(__dword_ptr[esi + 0x10], eax);
        a.push(eax);
        a.pop(edx);
        a.add(esi, 0x1FD);
        a.inc(ecx);
        a.cmp(ecx, 300);
        a.jb(top);
    }

    private static TestMachine CrossMachine(CpuTier tier, int threshold)
    {
        var m = Machine(tier, threshold, CrossLoop);
        for (uint i = 0; i < 0x30000; i += 4) m.Memory.Write32(0x20000 + i, i * 0x9E3779B1u);
        return m;
    }

    private static string Data(TestMachine m) =>
        Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(Enumerable.Range(0, 0x30000).Select(i => m.Memory.Read8(0x20000 + (ulong)i)).ToArray()));

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void AnAccessOffTheInlinePathLeavesTheRegionAndTheBlockCacheRunsTheRest(int threshold)
    {
        var compiled = CrossMachine(CpuTier.Compiled, threshold);
        var reference = CrossMachine(CpuTier.Interpreter, 0);
        var rng = new Random(threshold);
        Lockstep.RunAlike(compiled, reference, State, rng, 400, 40);
        Assert.Equal(StopReason.Stopped, reference.Run());
        Assert.Equal(StopReason.Stopped, compiled.Run());
        Assert.Equal(State(reference), State(compiled));
        Assert.Equal(Data(reference), Data(compiled));
        Assert.Equal(300u, compiled.Cpu.Ecx);
        uint top = Address(a => { a.mov(esi, 0x20F00); a.xor(ecx, ecx); });
        Assert.NotEmpty(RegionAt(compiled, top));
    }

    /// <summary>
    /// A block the run loop enters (here after stops) that is already a member of the loop head's
    /// region is not compiled again as the head of a region of its own: it takes the head's region,
    /// entered at its own member (BlockCompiler.Enter), and runs exactly as the interpreter does.
    /// Starting the region at its head whatever the entry fails this at the first such entry.
    /// </summary>
    [Fact]
    public void AMemberEnteredByTheRunLoopRunsTheHeadsRegionFromItself()
    {
        var compiled = FaultMachine(CpuTier.Compiled, 1);
        var reference = FaultMachine(CpuTier.Interpreter, 0);
        var rng = new Random(7);
        Lockstep.RunAlike(compiled, reference, State, rng, 200, 9);
        uint top = Address(a => { a.mov(esi, 0xFF00); a.xor(ecx, ecx); });
        uint[] members = RegionAt(compiled, top);
        Assert.True(members.Length >= 3, $"the loop head heads a region of {members.Length} blocks");
        int entered = 0;
        for (int k = 1; k < members.Length; k++)
        {
            var region = compiled.Cpu.Blocks.Lookup(members[k], members[k], true)?.Compiled;
            if (region == null) continue;
            Assert.Equal(top, region.Members[0].Eip);
            Assert.Equal(k, region.Entry);
            entered++;
        }
        Assert.True(entered > 0, "no member of the loop head's region was entered by the run loop");
        Assert.True(compiled.Cpu.CompiledCodeEntered > 0);
    }
}
