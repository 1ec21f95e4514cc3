using Iced.Intel;
using Replayvisor.Engine.Cpu;
using static Iced.Intel.AssemblerRegisters;
using PM = Replayvisor.Engine.Tests.Cpu.ProtectedModeMachine;

namespace Replayvisor.Engine.Tests.Cpu;

/// <summary>Runs a scenario under every CPU tier and requires identical architectural state.</summary>
internal static class Modes
{
    public static PM Run(CpuTier first, Func<CpuTier, PM> scenario)
    {
        PM m = scenario(first);
        foreach (CpuTier t in Enum.GetValues<CpuTier>())
            if (t != first) Assert.Equal(m.Snapshot(), scenario(t).Snapshot());
        return m;
    }
}

public class SegmentationTests
{
    private const int Free = 10;
    private const ushort FreeSel = Free * 8;

    public static TheoryData<string, int, int, ushort, ulong, bool, byte, uint> LoadFailures()
    {
        // name, ring, target segment, selector, descriptor at GDT[10] (0 = leave empty), load LDTR, vector, error
        var t = new TheoryData<string, int, int, ushort, ulong, bool, byte, uint>
        {
            { "ds beyond gdt limit", 0, Seg.DS, 0x3FB, 0, false, Vectors.GP, 0x3F8 },
            { "ds system (tss)", 0, Seg.DS, PM.TssSel, 0, false, Vectors.GP, PM.TssSel },
            { "ds execute-only code", 0, Seg.DS, FreeSel, PM.Seg(0, 0xFFFFF, 0x98), false, Vectors.GP, FreeSel },
            { "ds dpl0 data from ring 3", 3, Seg.DS, FreeSel | 3, PM.Seg(0, 0xFFFFF, 0x93), false, Vectors.GP, FreeSel },
            { "ds rpl3 > dpl0 at ring 0", 0, Seg.DS, FreeSel | 3, PM.Seg(0, 0xFFFFF, 0x93), false, Vectors.GP, FreeSel },
            { "ds dpl1 data from ring 3", 3, Seg.DS, PM.Data1 | 3, 0, false, Vectors.GP, PM.Data1 & 0xFFFC },
            { "ds non-conforming readable code dpl0 from ring 3", 3, Seg.DS, FreeSel | 3, PM.Seg(0, 0xFFFFF, 0x9A), false, Vectors.GP, FreeSel },
            { "ds not present", 0, Seg.DS, FreeSel, PM.Seg(0, 0xFFFFF, 0x13), false, Vectors.NP, FreeSel },
            { "fs not present", 0, Seg.FS, FreeSel, PM.Seg(0, 0xFFFFF, 0x13), false, Vectors.NP, FreeSel },
            { "gs call gate", 0, Seg.GS, FreeSel, PM.Gate(PM.Code0, 0, 0x8C), false, Vectors.GP, FreeSel },
            { "es ldt selector without ldtr", 0, Seg.ES, 0x0C, 0, false, Vectors.GP, 0x0C },
            { "ds ldt selector beyond ldt limit", 0, Seg.DS, 0x44, 0, true, Vectors.GP, 0x44 },
            { "ss null", 0, Seg.SS, 0, 0, false, Vectors.GP, 0 },
            { "ss null rpl3", 3, Seg.SS, 3, 0, false, Vectors.GP, 0 },
            { "ss rpl != cpl", 0, Seg.SS, PM.Data3, 0, false, Vectors.GP, PM.Data3 & 0xFFFC },
            { "ss dpl != cpl", 0, Seg.SS, PM.Data1 & 0xFFFC, 0, false, Vectors.GP, PM.Data1 & 0xFFFC },
            { "ss read-only data", 0, Seg.SS, FreeSel, PM.Seg(0, 0xFFFFF, 0x91), false, Vectors.GP, FreeSel },
            { "ss code", 0, Seg.SS, PM.Code0, 0, false, Vectors.GP, PM.Code0 },
            { "ss beyond gdt limit", 0, Seg.SS, 0x400, 0, false, Vectors.GP, 0x400 },
            { "ss not present", 0, Seg.SS, FreeSel, PM.Seg(0, 0xFFFFF, 0x13), false, Vectors.SS, FreeSel },
        };
        return t;
    }

    private static PM LoadScenario(CpuTier bc, int ring, int seg, ushort sel, ulong desc, bool ldt, string how)
    {
        var m = new PM(bc);
        if (desc != 0) m.SetGdt(Free, desc);
        if (ldt) m.Cpu.Ldtr = SegmentCache.FromDescriptor(PM.LdtSel, m.GetGdt(PM.LdtSel >> 3));
        m.Enter(ring);
        AssemblerRegisterSegment sreg = seg switch
        {
            Seg.ES => es, Seg.SS => ss, Seg.DS => ds, Seg.FS => fs, _ => gs,
        };
        m.Memory.Write32(0x3000, 0x1234);
        m.Memory.Write16(0x3004, sel);
        m.Memory.Write16(PM.Stack3 - 0x100, sel);
        m.Memory.Write16(PM.Stack0 - 0x100, sel);
        m.Load(a =>
        {
            a.mov(eax, sel);
            a.mov(ebx, 0x77);
            switch (how)
            {
                case "mov": a.mov(sreg, ax); break;
                case "pop":
                    a.sub(esp, 0x100);
                    if (seg == Seg.DS) a.pop(ds); else if (seg == Seg.ES) a.pop(es); else if (seg == Seg.SS) a.pop(ss); else if (seg == Seg.FS) a.pop(fs); else a.pop(gs);
                    break;
                default:
                    if (seg == Seg.DS) a.lds(ebx, __dword_ptr[0x3000]);
                    else if (seg == Seg.ES) a.les(ebx, __dword_ptr[0x3000]);
                    else if (seg == Seg.SS) a.lss(ebx, __dword_ptr[0x3000]);
                    else if (seg == Seg.FS) a.lfs(ebx, __dword_ptr[0x3000]);
                    else a.lgs(ebx, __dword_ptr[0x3000]);
                    break;
            }
            a.nop();
        });
        m.Run();
        return m;
    }

    [Theory]
    [MemberData(nameof(LoadFailures))]
    public void DescriptorLoadFailures(string name, int ring, int seg, ushort sel, ulong desc, bool ldt, byte vector, uint error)
    {
        foreach (string how in new[] { "mov", "pop", "lxs" })
        {
            PM m = Modes.Run(CpuTier.BlockCache, bc => LoadScenario(bc, ring, seg, sel, desc, ldt, how));
            CpuEvent e = m.Event;
            Assert.True(e.Vector == vector && e.ErrorCode == error,
                $"{name} via {how}: got vector {e.Vector} error 0x{e.ErrorCode:x}, want {vector} 0x{error:x}");
            Assert.Equal(EventKind.Fault, e.Kind);
            Assert.True(e.HasErrorCode);
            // The faulting instruction changed nothing: the segment, EBX and ESP keep their values.
            var fresh = new PM(CpuTier.BlockCache);
            fresh.Enter(ring);
            Assert.Equal(fresh.Cpu.Segs[seg].Selector, m.Cpu.Segs[seg].Selector);
            Assert.Equal(0x77u, m.Cpu.Ebx);
            Assert.Equal(how == "pop" ? fresh.Cpu.Esp - 0x100 : fresh.Cpu.Esp, m.Cpu.Esp);
            Assert.Equal(how == "pop" ? 3ul : 2ul, m.Cpu.Icount);
            Assert.Equal(e.InstructionEip, m.Cpu.Eip);
        }
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void AccessedBitIsSetOnLoad(CpuTier bc)
    {
        var m = Modes.Run(bc, b =>
        {
            var m = new PM(b);
            m.SetGdt(Free, PM.Seg(0x100000, 0xFFFF, 0x92, g: false));
            m.Memory.Write32(0x100010, 0xCAFEBABE);
            m.Load(a =>
            {
                a.mov(eax, FreeSel);
                a.mov(fs, ax);
                a.mov(ecx, __dword_ptr.fs[0x10]);
                a.mov(edx, fs);
                a.hlt();
            });
            m.Run();
            return m;
        });
        Assert.Empty(m.Rec!.Events);
        Assert.Equal(0x93, m.Memory.Read8(PM.GdtBase + Free * 8 + 5));
        Assert.Equal(0xCAFEBABEu, m.Cpu.Ecx);
        Assert.Equal((uint)FreeSel, m.Cpu.Edx);
        Assert.Equal(0x100000u, m.Cpu.Segs[Seg.FS].Base);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void NullSelectorLoadsButUseFaults(CpuTier bc)
    {
        var m = Modes.Run(bc, b =>
        {
            var m = new PM(b);
            m.Enter(3);
            m.Load(a =>
            {
                a.mov(eax, 3);
                a.mov(ds, ax);
                a.mov(ecx, ds);
                a.mov(edx, __dword_ptr[0x2000]);
            });
            m.Run();
            return m;
        });
        CpuEvent e = m.Event;
        Assert.Equal(Vectors.GP, e.Vector);
        Assert.Equal(0u, e.ErrorCode);
        Assert.Equal(3u, m.Cpu.Ecx);
        Assert.False(m.Cpu.Segs[Seg.DS].Usable);
        Assert.Equal(3ul, m.Cpu.Icount);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void ConformingReadableCodeLoadsIntoDsFromRing3(CpuTier bc)
    {
        var m = Modes.Run(bc, b =>
        {
            var m = new PM(b);
            m.SetGdt(Free, PM.Seg(0, 0xFFFFF, 0x9E));
            m.SetLdt(2, PM.Seg(0, 0xFFFFF, 0xF2));
            m.Enter(3);
            m.Cpu.Ldtr = SegmentCache.FromDescriptor(PM.LdtSel, m.GetGdt(PM.LdtSel >> 3));
            m.Load(a =>
            {
                a.mov(eax, FreeSel);
                a.mov(es, ax);
                a.mov(eax, 0x17); // LDT index 2, RPL 3
                a.mov(gs, ax);
                a.mov(ecx, __dword_ptr.gs[0x1000]);
                a.mov(__dword_ptr.gs[0x2000], ecx);
                a.@int(0x30);
            });
            m.Run();
            return m;
        });
        Assert.Equal(0x30, m.Event.Vector);
        Assert.Equal(FreeSel, m.Cpu.Segs[Seg.ES].Selector);
        Assert.Equal(0x17, m.Cpu.Segs[Seg.GS].Selector);
        Assert.Equal(0xF3, m.Memory.Read8(PM.LdtBase + 2 * 8 + 5)); // accessed bit in the LDT
        Assert.Equal(m.Memory.Read32(0x1000), m.Memory.Read32(0x2000));
    }

    [Fact]
    public void MovCsIsUndefined()
    {
        var m = Modes.Run(CpuTier.BlockCache, b =>
        {
            var m = new PM(b);
            m.Load(a => { a.nop(); a.db(0x8E, 0xC8); });
            m.Run();
            return m;
        });
        Assert.Equal(Vectors.UD, m.Event.Vector);
        Assert.Equal(PM.CodeBase + 1, m.Event.InstructionEip);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void PushPopSegmentRegisters(CpuTier bc)
    {
        var m = Modes.Run(bc, b =>
        {
            var m = new PM(b);
            m.Memory.Write32(PM.Stack0 - 4, 0xFFFFFFFF);
            m.Load(a =>
            {
                a.push(ds);            // 32-bit push: ESP -= 4, only 16 bits written
                a.mov(eax, __dword_ptr[esp]);
                a.push(PM.Data0);
                a.pop(es);
                a.pop(fs);
                a.hlt();
            });
            m.Run();
            return m;
        });
        Assert.Empty(m.Rec!.Events);
        Assert.Equal(0xFFFF0000u | PM.Data0, m.Cpu.Eax);
        Assert.Equal(PM.Stack0, m.Cpu.Esp);
        Assert.Equal(PM.Data0, m.Cpu.Segs[Seg.ES].Selector);
        Assert.Equal(PM.Data0, m.Cpu.Segs[Seg.FS].Selector);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void ExpandUpLimitIsByteExact(CpuTier bc)
    {
        var m = Modes.Run(bc, b =>
        {
            var m = new PM(b);
            m.SetGdt(Free, PM.Seg(0x20000, 0xFFF, 0x93, g: false));
            m.Load(a =>
            {
                a.mov(eax, FreeSel);
                a.mov(ds, ax);
                a.mov(ecx, __dword_ptr[0xFFC]);
                a.mov(edx, __dword_ptr[0xFFD]);
            });
            m.Run();
            return m;
        });
        Assert.Equal(Vectors.GP, m.Event.Vector);
        Assert.Equal(0u, m.Event.ErrorCode);
        Assert.Equal(3ul, m.Cpu.Icount);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void StackLimitViolationIsSs0(CpuTier bc)
    {
        var m = Modes.Run(bc, b =>
        {
            var m = new PM(b);
            m.SetGdt(Free, PM.Seg(0x20000, 0xFFF, 0x93, g: false));
            m.Load(a =>
            {
                a.mov(eax, FreeSel);
                a.mov(ss, ax);
                a.mov(esp, 0x1002);
                a.push(eax);        // 0xFFE..0x1001: crosses the limit
            });
            m.Run();
            return m;
        });
        Assert.Equal(Vectors.SS, m.Event.Vector);
        Assert.Equal(0u, m.Event.ErrorCode);
        Assert.Equal(0x1002u, m.Cpu.Esp);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void ExpandDownAndGranularity(CpuTier bc)
    {
        var m = Modes.Run(bc, b =>
        {
            var m = new PM(b);
            // Expand-down, B=1, limit 0xFFF: valid offsets 0x1000..0xFFFFFFFF (base 0).
            m.SetGdt(Free, PM.Seg(0, 0xFFF, 0x97, g: false, big: true));
            // Expand-up, G=1, raw limit 0: valid offsets 0..0xFFF.
            m.SetGdt(Free + 1, PM.Seg(0, 0, 0x93, g: true));
            m.Load(a =>
            {
                a.mov(eax, FreeSel);
                a.mov(es, ax);
                a.mov(eax, FreeSel + 8);
                a.mov(fs, ax);
                a.mov(ecx, __dword_ptr.es[0x1000]);     // ok
                a.mov(edx, __dword_ptr.fs[0xFFC]);      // ok (granular limit 0xFFF)
                a.mov(esi, __dword_ptr.es[0x4000]);     // ok
                a.mov(edi, __dword_ptr.es[0xFFF]);      // #GP(0): below the expand-down limit
            });
            m.Run();
            return m;
        });
        Assert.Equal(Vectors.GP, m.Event.Vector);
        Assert.Equal(0u, m.Event.ErrorCode);
        Assert.Equal(7ul, m.Cpu.Icount);
        var g = new PM(CpuTier.BlockCache);
        g.SetGdt(Free + 1, PM.Seg(0, 0, 0x93, g: true));
        g.Load(a =>
        {
            a.mov(eax, FreeSel + 8);
            a.mov(fs, ax);
            a.mov(edx, __dword_ptr.fs[0xFFD]);
        });
        g.Run();
        Assert.Equal(Vectors.GP, g.Event.Vector);
        Assert.Equal(0xFFFu, g.Cpu.Segs[Seg.FS].Limit);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void LarLslVerrVerwArpl(CpuTier bc)
    {
        var m = Modes.Run(bc, b =>
        {
            var m = new PM(b);
            m.Enter(3);
            m.Load(a =>
            {
                a.mov(ebx, PM.Code3);
                a.lar(eax, ebx);               // ZF=1, access rights
                a.setz(cl);
                a.mov(ebx, PM.Data0);
                a.mov(edx, 0x55);
                a.lar(edx, ebx);               // DPL 0 < CPL 3: ZF=0, EDX unchanged
                a.setz(ch);
                a.mov(ebx, PM.TssSel);
                a.lsl(esi, ebx);               // TSS visible? DPL 0 < 3: ZF=0
                a.mov(ebx, PM.Data3);
                a.lsl(esi, ebx);               // 0xFFFFFFFF
                a.verw(bx);
                a.setz(__byte_ptr[0x3000]);
                a.mov(ebx, PM.Code3);
                a.verw(bx);
                a.setz(__byte_ptr[0x3001]);
                a.verr(bx);
                a.setz(__byte_ptr[0x3002]);
                a.mov(edi, 0x10);
                a.mov(ebx, 3);
                a.arpl(di, bx);
                a.setz(__byte_ptr[0x3003]);
                a.@int(0x30);
            });
            m.Run();
            return m;
        });
        Assert.Equal(0x30, m.Event.Vector);
        Assert.Equal(0x00CFFB00u, m.Cpu.Eax);
        Assert.Equal(1u, m.Cpu.Ecx & 0xFF);
        Assert.Equal(0u, (m.Cpu.Ecx >> 8) & 0xFF);
        Assert.Equal(0x55u, m.Cpu.Edx);
        Assert.Equal(0xFFFFFFFFu, m.Cpu.Esi);
        Assert.Equal(1, m.Memory.Read8(0x3000));
        Assert.Equal(0, m.Memory.Read8(0x3001));
        Assert.Equal(1, m.Memory.Read8(0x3002));
        Assert.Equal(1, m.Memory.Read8(0x3003));
        Assert.Equal(0x13u, m.Cpu.Edi);
    }
}
