using Replayvisor.Engine.Cpu;
using static Iced.Intel.AssemblerRegisters;
using PM = Replayvisor.Engine.Tests.Cpu.ProtectedModeMachine;

namespace Replayvisor.Engine.Tests.Cpu;

/// <summary>#PF error codes and CR2, A/D bits, WP, U/S, NX, global pages and invlpg, for 2-level and PAE paging.</summary>
public class PagingTests
{
    private const uint Pd = 0x80000, Pt = 0x81000;
    private const uint Pdpt = 0x84000, PaePd = 0x85000, PaePt0 = 0x86000, PaePt1 = 0x87000;
    private const uint TestPage = 0x200000, Page2 = 0x201000, Page3 = 0x202000, OtherFrame = 0x203000;

    /// <summary>2-level paging, identity map of 0-4 MiB with U|W|P; CR0.PG set (and WP if asked).</summary>
    private static PM TwoLevel(CpuTier bc, bool wp = false)
    {
        var m = new PM(bc);
        m.Memory.Write32(Pd, Pt | 7);
        for (uint i = 0; i < 1024; i++) m.Memory.Write32(Pt + i * 4, (i << 12) | 7);
        m.Cpu.Cr3 = Pd;
        m.Cpu.Cr0 |= Cr0Bits.PG | (wp ? Cr0Bits.WP : 0);
        m.Cpu.FlushTlb();
        return m;
    }

    private static void SetPte(PM m, uint lin, uint pte) => m.Memory.Write32(Pt + ((lin >> 12) & 0x3FF) * 4, pte);

    /// <summary>PAE paging, identity map of 0-4 MiB with U|W|P.</summary>
    private static PM Pae(CpuTier bc, bool nxe = false)
    {
        var m = new PM(bc);
        m.Memory.Write64(Pdpt, PaePd | 1);
        m.Memory.Write64(PaePd, PaePt0 | 7);
        m.Memory.Write64(PaePd + 8, PaePt1 | 7);
        for (uint i = 0; i < 1024; i++) m.Memory.Write64(PaePt0 + i * 8, (i << 12) | 7ul);
        m.Cpu.Cr4 |= Cr4Bits.PAE;
        m.Cpu.Cr3 = Pdpt;
        m.Cpu.Cr0 |= Cr0Bits.PG;
        if (nxe) m.Cpu.Efer = 0x800;
        m.Cpu.FlushTlb();
        return m;
    }

    private static void SetPaePte(PM m, uint lin, ulong pte) => m.Memory.Write64(PaePt0 + (lin >> 12) * 8, pte);

    public static TheoryData<string, bool, int, uint, ulong, bool, uint> Faults() => new()
    {
        // name, pae, ring, pte, (unused), write, expected error code
        { "not present read", false, 0, 0, 0, false, 0 },
        { "not present write ring 3", false, 3, 0, 0, true, PfErr.W | PfErr.U },
        { "read-only write ring 3", false, 3, TestPage | 5, 0, true, PfErr.P | PfErr.W | PfErr.U },
        { "supervisor page read ring 3", false, 3, TestPage | 3, 0, false, PfErr.P | PfErr.U },
        { "supervisor page read ring 1", false, 1, TestPage | 3, 0, false, uint.MaxValue },
        { "pae not present write", true, 0, 0, 0, true, PfErr.W },
        { "pae reserved bit", true, 0, 0, (1ul << 40) | TestPage | 3, false, PfErr.P | PfErr.RSVD },
        { "pae read-only write ring 3", true, 3, 0, TestPage | 5, true, PfErr.P | PfErr.W | PfErr.U },
        { "pae user read of supervisor page", true, 3, 0, TestPage | 3, false, PfErr.P | PfErr.U },
    };

    [Theory]
    [MemberData(nameof(Faults))]
    public void PageFaultErrorCodes(string name, bool pae, int ring, uint pte, ulong paePte, bool write, uint err)
    {
        var m = Modes.Run(CpuTier.BlockCache, b =>
        {
            var m = pae ? Pae(b) : TwoLevel(b);
            if (pae) SetPaePte(m, TestPage, paePte); else SetPte(m, TestPage, pte);
            m.Enter(ring);
            m.Load(a =>
            {
                a.mov(ebx, 0x77);
                if (write) a.mov(__dword_ptr[TestPage + 0x123], ebx);
                else a.mov(ebx, __dword_ptr[TestPage + 0x123]);
                a.@int(0x31);
            });
            m.Run();
            return m;
        });
        CpuEvent e = m.Event;
        if (err == uint.MaxValue)
        {
            Assert.Equal(0x31, e.Vector); // rings 0-2 are supervisor: allowed
            return;
        }
        Assert.True(e.Vector == Vectors.PF && e.ErrorCode == err, $"{name}: got {e}, want #PF error 0x{err:x}");
        Assert.Equal(TestPage + 0x123, m.Cpu.Cr2);
        Assert.Equal(TestPage + 0x123, e.Cr2);
        Assert.Equal(0x77u, m.Cpu.Ebx);
    }

    /// <summary>
    /// A read-modify-write on a not-present page reports a write access (W set), as the host
    /// processor does (found by the differential tests; before, the read was reported).
    /// </summary>
    [Theory]
    [InlineData("inc")]
    [InlineData("add")]
    [InlineData("xchg")]
    [InlineData("xadd")]
    [InlineData("cmpxchg")]
    [InlineData("bts")]
    [InlineData("shl")]
    [InlineData("not")]
    public void ReadModifyWriteOnANotPresentPageFaultsAsAWrite(string op)
    {
        var m = Modes.Run(CpuTier.Compiled, b =>
        {
            var m = TwoLevel(b);
            SetPte(m, TestPage, 0);
            m.Enter(3);
            m.Load(a =>
            {
                var mem = __dword_ptr[TestPage + 0x10];
                switch (op)
                {
                    case "inc": a.inc(mem); break;
                    case "add": a.add(mem, ebx); break;
                    case "xchg": a.xchg(mem, ebx); break;
                    case "xadd": a.xadd(mem, ebx); break;
                    case "cmpxchg": a.cmpxchg(mem, ebx); break;
                    case "bts": a.bts(mem, 3); break;
                    case "shl": a.shl(mem, 1); break;
                    default: a.not(mem); break;
                }
                a.@int(0x31);
            });
            m.Run();
            return m;
        });
        Assert.Equal(Vectors.PF, m.Event.Vector);
        Assert.Equal(PfErr.W | PfErr.U, m.Event.ErrorCode);
        Assert.Equal(TestPage + 0x10, m.Event.Cr2);
    }

    /// <summary>
    /// pusha whose frame crosses from a writable page into a read-only one faults with CR2 at the
    /// first byte of the read-only page, as the host does (before, the frame's last byte was reported).
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void PushaIntoAReadOnlyPageReportsTheFirstFaultingByte(bool bc)
    {
        var m = Modes.Run(bc ? CpuTier.Compiled : CpuTier.BlockCache, b =>
        {
            var m = TwoLevel(b);
            SetPte(m, Page2, Page2 | 5); // user, read-only, above a writable page
            m.Enter(3);
            m.Load(a =>
            {
                a.mov(esp, (int)Page2 + 3);
                a.pushad();
                a.@int(0x31);
            });
            m.Run();
            return m;
        });
        Assert.Equal(Vectors.PF, m.Event.Vector);
        Assert.Equal(PfErr.P | PfErr.W | PfErr.U, m.Event.ErrorCode);
        Assert.Equal(Page2, m.Event.Cr2);
        Assert.Equal(0u, m.Memory.Read32(Page2 - 4)); // nothing of the frame was written
    }

    [Theory]
    [InlineData(false, true)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    [InlineData(true, false)]
    public void AccessedAndDirtyBits(bool pae, bool bc)
    {
        var m = Modes.Run(bc ? CpuTier.Compiled : CpuTier.Interpreter, b =>
        {
            var m = pae ? Pae(b) : TwoLevel(b);
            if (pae) { SetPaePte(m, TestPage, TestPage | 7); SetPaePte(m, Page2, Page2 | 7); }
            else { SetPte(m, TestPage, TestPage | 7); SetPte(m, Page2, Page2 | 7); }
            m.Load(a =>
            {
                a.mov(eax, __dword_ptr[TestPage]);
                a.mov(__dword_ptr[Page2], eax);
                a.@int(0x31);
            });
            m.Run();
            return m;
        });
        Assert.Equal(0x31, m.Event.Vector);
        if (pae)
        {
            Assert.Equal((ulong)TestPage | 0x27, m.Memory.Read64(PaePt0 + (TestPage >> 12) * 8));
            Assert.Equal((ulong)Page2 | 0x67, m.Memory.Read64(PaePt0 + (Page2 >> 12) * 8));
            Assert.Equal((ulong)PaePt0 | 0x27, m.Memory.Read64(PaePd));
        }
        else
        {
            Assert.Equal(TestPage | 0x27, m.Memory.Read32(Pt + (TestPage >> 12) * 4));
            Assert.Equal(Page2 | 0x67, m.Memory.Read32(Pt + (Page2 >> 12) * 4));
            Assert.Equal(Pt | 0x27, m.Memory.Read32(Pd));
        }
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void WriteProtectGovernsSupervisorWrites(CpuTier bc)
    {
        var m = Modes.Run(bc, b =>
        {
            var m = TwoLevel(b);
            SetPte(m, TestPage, TestPage | 1);           // read-only, supervisor
            m.Load(a =>
            {
                a.mov(__dword_ptr[TestPage], 0x11);      // WP=0: allowed
                a.mov(eax, cr0);
                a.or(eax, (int)Cr0Bits.WP);
                a.mov(cr0, eax);
                a.mov(__dword_ptr[TestPage + 4], 0x22);  // WP=1: #PF(P|W)
            });
            m.Run();
            return m;
        });
        Assert.Equal(Vectors.PF, m.Event.Vector);
        Assert.Equal(PfErr.P | PfErr.W, m.Event.ErrorCode);
        Assert.Equal(TestPage + 4, m.Cpu.Cr2);
        Assert.Equal(0x11u, m.Memory.Read32(TestPage));
        Assert.Equal(0u, m.Memory.Read32(TestPage + 4));
        Assert.Equal(TestPage | 0x61, m.Memory.Read32(Pt + (TestPage >> 12) * 4)); // A and D from the WP=0 write
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void NoExecuteFetchFault(CpuTier bc)
    {
        var m = Modes.Run(bc, b =>
        {
            var m = Pae(b, nxe: true);
            SetPaePte(m, TestPage, (1ul << 63) | TestPage | 3);
            m.Memory.Write32(TestPage, 0x90909090);
            m.Load(a =>
            {
                a.mov(eax, __dword_ptr[TestPage]);       // data read of an NX page is fine
                a.mov(ecx, TestPage + 0x10);
                a.jmp(ecx);
            });
            m.Run();
            return m;
        });
        Assert.Equal(Vectors.PF, m.Event.Vector);
        Assert.Equal(PfErr.P | PfErr.ID, m.Event.ErrorCode);
        Assert.Equal(TestPage + 0x10, m.Cpu.Cr2);
        Assert.Equal(TestPage + 0x10, m.Cpu.Eip);
        Assert.Equal(0x90909090u, m.Cpu.Eax);
        Assert.Equal(3ul, m.Cpu.Icount);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void GlobalPagesSurviveCr3LoadUntilInvlpg(CpuTier bc)
    {
        var m = Modes.Run(bc, b =>
        {
            var m = TwoLevel(b);
            m.Cpu.Cr4 |= Cr4Bits.PGE;
            m.Cpu.FlushTlb();
            SetPte(m, Page3, Page3 | 0x103);        // global
            SetPte(m, Page2, Page2 | 0x003);        // not global
            m.Memory.Write32(Page3, 0xAAAA);
            m.Memory.Write32(Page2, 0xBBBB);
            m.Memory.Write32(OtherFrame, 0xCCCC);
            m.Load(a =>
            {
                a.mov(eax, __dword_ptr[Page3]);                  // fill the TLB
                a.mov(eax, __dword_ptr[Page2]);
                a.mov(__dword_ptr[Pt + (Page3 >> 12) * 4], OtherFrame | 0x103);
                a.mov(__dword_ptr[Pt + (Page2 >> 12) * 4], OtherFrame | 0x003);
                a.mov(eax, cr3);
                a.mov(cr3, eax);
                a.mov(ebx, __dword_ptr[Page3]);                  // global: stale translation kept
                a.mov(ecx, __dword_ptr[Page2]);                  // non-global: re-walked
                a.invlpg(__dword_ptr[Page3]);
                a.mov(edx, __dword_ptr[Page3]);                  // re-walked after invlpg
                a.@int(0x31);
            });
            m.Run();
            return m;
        });
        Assert.Equal(0x31, m.Event.Vector);
        Assert.Equal(0xAAAAu, m.Cpu.Ebx);
        Assert.Equal(0xCCCCu, m.Cpu.Ecx);
        Assert.Equal(0xCCCCu, m.Cpu.Edx);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void ClearingPgeFlushesGlobalPages(CpuTier bc)
    {
        var m = Modes.Run(bc, b =>
        {
            var m = TwoLevel(b);
            m.Cpu.Cr4 |= Cr4Bits.PGE;
            m.Cpu.FlushTlb();
            SetPte(m, Page3, Page3 | 0x103);
            m.Memory.Write32(Page3, 0xAAAA);
            m.Memory.Write32(OtherFrame, 0xCCCC);
            m.Load(a =>
            {
                a.mov(eax, __dword_ptr[Page3]);
                a.mov(__dword_ptr[Pt + (Page3 >> 12) * 4], OtherFrame | 0x103);
                a.mov(eax, cr4);
                a.and(eax, ~(int)Cr4Bits.PGE);
                a.mov(cr4, eax);
                a.mov(ebx, __dword_ptr[Page3]);
                a.@int(0x31);
            });
            m.Run();
            return m;
        });
        Assert.Equal(0xCCCCu, m.Cpu.Ebx);
    }
}
