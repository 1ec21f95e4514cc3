using Iced.Intel;
using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Tests.Xen;
using static Iced.Intel.AssemblerRegisters;
using static Replayvisor.Engine.Tests.Hostile.HostileGuest;
using static Replayvisor.Engine.Tests.Xen.XenTestGuest;

namespace Replayvisor.Engine.Tests.Hostile;

/// <summary>Random bytes at ring 1 after a valid start; self-modifying code and stores into page tables and the GDT.</summary>
public class RandomCodeTests(Xunit.Abstractions.ITestOutputHelper output)
{
    internal static HostileCase RandomBytes(int seed, bool pae)
    {
        var r = new Random(seed);
        var g = new XenTestGuest();
        RandomTrapTable(g, r);
        r.NextBytes(g.Data.AsSpan(2056));
        for (int k = 0; k < HandlerCount; k++) Handler(g, r, HandlerAt(k), userResume: false);
        var code = new byte[CodeEnd - CodeStart];
        r.NextBytes(code);
        // Bias some stretches toward one-byte and 0F-prefixed opcodes Xen guests love (segment pops, iret, int, hlt, cli/sti).
        byte[] favourites = [0x07, 0x17, 0x1F, 0x0F, 0xCF, 0xCD, 0xF4, 0xFA, 0xFB, 0x8E, 0xC5, 0xC4, 0xEA, 0x9A, 0xCA, 0xCB, 0xEE, 0xEC, 0xE4, 0xE6];
        for (int i = 0; i < code.Length; i += 1 + r.Next(8))
            if (r.Next(3) == 0) code[i] = favourites[r.Next(favourites.Length)];
        uint first = CodeStart + (uint)r.Next(0x100);
        g.Main(a => Start(a, r, first));
        g.Code(CodeStart, a => a.db(code));
        var starts = new List<uint>();
        for (int i = 0; i < 64; i++) starts.Add(CodeStart + (uint)r.Next(code.Length));
        var image = g.BuildImage(pae);
        return new HostileCase($"random-bytes seed {seed} pae {pae}", image, m => WriteResumeTable(m, starts, seed), 60_000, pae);
    }

    [Fact]
    public void RandomBytesAtRing1EndNormallyAndReproducibly()
    {
        int n = HostileRun.Iterations(24);
        for (int i = 0; i < n; i++)
            output.WriteLine($"{i}: {HostileRun.Check(RandomBytes(1000 + i, pae: i % 4 != 3), alsoWithoutBlockCache: i % 6 == 0).Exit}");
    }

    /// <summary>
    /// Code that stores random values into its own code (ahead of itself and far away), into its page
    /// tables through their read-only mappings (Xen's writable-page-table emulation), into a page it
    /// made its GDT, into start_info and the hypercall page, then executes what it wrote.
    /// </summary>
    internal static HostileCase SelfModifying(int seed, bool pae)
    {
        var r = new Random(seed);
        var g = new XenTestGuest();
        RandomTrapTable(g, r);
        for (int k = 0; k < HandlerCount; k++) Handler(g, r, HandlerAt(k), userResume: false);
        // Data + 0x900: the update_va_mapping pte (lo, hi) making Scratch + 0x2000 read-only, and its GDT frame list (Prepare fills them).
        const uint GdtVa = Scratch + 0x2000;
        var domainStub = StubDomain(pae);
        var starts = new List<uint>();
        uint at = CodeStart;
        var chunks = new List<byte[]>();
        while (true)
        {
            byte[] insn = SelfModifyingStep(r, domainStub, at, GdtVa);
            if (at + insn.Length > CodeEnd - 16) break;
            chunks.Add(insn);
            starts.Add(at);
            at += (uint)insn.Length;
        }
        var code = chunks.SelectMany(c => c).ToArray();
        g.Main(a =>
        {
            // Make Scratch+0x2000 read-only and use it as a one-frame GDT (entries after Xen's check), then go.
            a.mov(ebx, GdtVa);
            a.mov(ecx, __dword_ptr[DataPage + 0x900]);
            a.mov(edx, __dword_ptr[DataPage + 0x904]);
            a.mov(esi, 2); // UVMF_INVLPG
            Hcall(a, 14);
            a.mov(ebx, DataPage + 0x908);
            a.mov(ecx, 512);
            Hcall(a, 2);
            Start(a, r, CodeStart);
        });
        g.Code(CodeStart, a => a.db(code));
        var image = g.BuildImage(pae);
        return new HostileCase($"self-modifying seed {seed} pae {pae}", image, m =>
        {
            uint pfn = (GdtVa - XenTestGuest.VirtBase) >> 12;
            uint mfn = m.Domain.P2m[(int)pfn];
            Write32(m, DataPage + 0x900, (mfn << 12) | 0x21);
            Write32(m, DataPage + 0x904, pae ? mfn >> 20 : 0);
            Write32(m, DataPage + 0x908, mfn);
            WriteResumeTable(m, starts, seed);
        }, 60_000, pae);
    }

    /// <summary>Page-table VAs do not depend on the image contents, only on its size: build a stub once to learn them.</summary>
    private static BuiltDomain StubDomain(bool pae) => pae ? PaeStub.Value : NonPaeStub.Value;
    private static readonly Lazy<BuiltDomain> PaeStub = new(() => new XenTestGuest().Main(a => a.nop()).Machine(pae: true).Domain);
    private static readonly Lazy<BuiltDomain> NonPaeStub = new(() => new XenTestGuest().Main(a => a.nop()).Machine(pae: false).Domain);

    private static byte[] SelfModifyingStep(Random r, BuiltDomain d, uint at, uint gdtVa)
    {
        var a = new Assembler(32);
        uint value = r.Next(3) switch
        {
            0 => R32(r),
            1 => (uint)r.Next(0x100) * 0x1000 | (uint)r.Next(0x80),   // pte-looking
            _ => 0x90909090u ^ (uint)(r.Next(4) << (8 * r.Next(4))),   // nearly nops / small edits
        };
        uint target = r.Next(10) switch
        {
            0 or 1 => at + (uint)r.Next(4, 64),                          // just ahead: must be seen by the next fetch
            2 => gdtVa + (uint)r.Next(0x1000) & ~3u,
            3 => d.Virtual.PageTables + (uint)r.Next((int)d.Virtual.NrPtFrames * 4096) & ~3u,
            _ => Address(r, d),
        };
        switch (r.Next(9))
        {
            case 0: a.mov(__dword_ptr[target], value); break;
            case 1: a.mov(__byte_ptr[target], (byte)value); break;
            case 2: a.mov(__word_ptr[target], (ushort)value); break;
            case 3: a.mov(edi, target); a.mov(eax, value); a.mov(ecx, (uint)r.Next(1, 8)); a.rep.stosd(); break;
            case 4: a.mov(eax, value); a.xchg(__dword_ptr[target], eax); break;
            case 5: a.mov(eax, __dword_ptr[target]); a.mov(edx, value); a.@lock.cmpxchg(__dword_ptr[target], edx); break;
            case 6: a.mov(eax, value); a.mov(edx, R32(r)); a.mov(ebx, eax); a.mov(ecx, edx); a.@lock.cmpxchg8b(__qword_ptr[target & ~7u]); break;
            case 7: a.add(__dword_ptr[target], value); break;
            default: a.mov(eax, target); a.mov(ebx, value); a.mov(__dword_ptr[eax], ebx); a.jmp(eax); break; // write then jump into it
        }
        return XenTestGuest.Assemble(x => { foreach (var i in a.Instructions) x.AddInstruction(i); }, at);
    }

    [Fact]
    public void SelfModifyingCodeAndStoresIntoPageTablesEndNormallyAndReproducibly()
    {
        int n = HostileRun.Iterations(16);
        for (int i = 0; i < n; i++)
            output.WriteLine($"{i}: {HostileRun.Check(SelfModifying(2000 + i, pae: i % 4 != 1), alsoWithoutBlockCache: i % 3 == 0).Exit}");
    }
}
