using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.State;
using static Iced.Intel.AssemblerRegisters;

namespace Replayvisor.Engine.Tests.Cpu;

/// <summary>The incremental RAM hash is only right if every writer marks frames dirty: check each store path.</summary>
public class DirtyTrackingTests
{
    private static void Hash(TestMachine m)
    {
        var w = new CanonicalWriter();
        m.Memory.WriteState(w);
        w.Finish();
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void EveryStorePathMarksItsFrameDirty(CpuTier blockCache)
    {
        // The program runs its stores twice, with hlt in between: the first pass fills the TLB with
        // writable entries (dirty bits set), so the second pass, after the hash, takes the fast paths.
        var m = new TestMachine(blockCache: blockCache).Load(a =>
        {
            var pass = a.CreateLabel();
            var done = a.CreateLabel();
            a.mov(edx, 2);
            a.Label(ref pass);
            a.mov(ebx, 0x20000);
            a.mov(__dword_ptr[ebx], 0x11111111);            // mov m32, imm
            a.mov(__word_ptr[ebx + 0x1000], 0x2222);        // mov m16
            a.mov(__byte_ptr[ebx + 0x2000], 0x33);          // mov m8
            a.add(__dword_ptr[ebx + 0x3000], 5);            // read-modify-write
            a.inc(__dword_ptr[ebx + 0x4000]);
            a.xchg(__dword_ptr[ebx + 0x5000], eax);
            a.mov(eax, 0); a.mov(ecx, 7);
            a.cmpxchg(__dword_ptr[ebx + 0x6000], ecx);
            a.bts(__dword_ptr[ebx + 0x7000], 3);
            a.push(0x44444444);                             // stack
            a.mov(edi, 0x28000); a.mov(ecx, 256); a.mov(eax, 0x55555555);
            a.rep.stosd();                                  // bulk store
            a.mov(esi, 0x28000); a.mov(edi, 0x29000); a.mov(ecx, 256);
            a.rep.movsd();                                  // bulk copy
            a.mov(__dword_ptr[0x2AFFE], 0x66666666);        // store across a page boundary
            a.add(__dword_ptr[0x2B000], edx);               // a frame the second pass changes differently
            a.dec(edx);
            a.jz(done);
            a.hlt();
            a.jmp(pass);
            a.Label(ref done);
        });
        m.Run();
        Assert.Equal(1, m.Host.Halts);
        Hash(m);                                           // every frame hashed and marked clean
        Assert.Empty(m.Memory.StaleCleanFrames());
        m.Run();
        Assert.Equal(2, m.Host.Halts);
        Assert.Empty(m.Memory.StaleCleanFrames());
        Hash(m);
        Assert.Empty(m.Memory.StaleCleanFrames());
    }

    [Fact]
    public void TheIncrementalHashEqualsAFreshOne()
    {
        var m = new TestMachine().Load(a =>
        {
            var top = a.CreateLabel();
            a.mov(ecx, 5000);
            a.Label(ref top);
            a.mov(__dword_ptr[ecx * 8 + 0x20000], ecx);
            a.dec(ecx);
            a.jnz(top);
        });
        Hash(m);
        m.Run();
        var w1 = new CanonicalWriter();
        m.Memory.WriteState(w1);
        var fresh = new TestMachine();
        fresh.Memory.RestoreBytes(m.Memory.SnapshotBytes());
        var w2 = new CanonicalWriter();
        fresh.Memory.WriteState(w2);
        Assert.Equal(w2.Finish(), w1.Finish());
    }
}
