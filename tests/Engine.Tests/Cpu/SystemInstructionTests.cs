using Iced.Intel;
using Replayvisor.Engine.Cpu;
using static Iced.Intel.AssemblerRegisters;
using PM = Replayvisor.Engine.Tests.Cpu.ProtectedModeMachine;

namespace Replayvisor.Engine.Tests.Cpu;

/// <summary>Privileged and system-state instructions: CPL checks, CR/DR rules, MSRs, descriptor-table registers.</summary>
public class SystemInstructionTests
{
    private static PM RunAt(CpuTier bc, int ring, Action<Assembler> code, Action<PM>? setup = null)
    {
        return Modes.Run(bc, b =>
        {
            var m = new PM(b);
            setup?.Invoke(m);
            m.Enter(ring);
            m.Load(a => { a.mov(ebx, 0x77); code(a); a.@int(0x31); });
            m.Run();
            return m;
        });
    }

    public static TheoryData<string> PrivilegedAtRing1() => new()
    {
        "lgdt", "lidt", "lldt", "ltr", "lmsw", "clts", "invlpg", "wbinvd", "invd", "rdmsr", "wrmsr",
        "mov cr0", "mov from cr3", "mov cr3", "mov dr7", "mov from dr6", "hlt",
    };

    [Theory]
    [MemberData(nameof(PrivilegedAtRing1))]
    public void PrivilegedInstructionsRaiseGp0AboveRing0(string insn)
    {
        Action<Assembler> code = insn switch
        {
            "lgdt" => a => a.lgdt(__[0x3000]),
            "lidt" => a => a.lidt(__[0x3000]),
            "lldt" => a => a.lldt(ax),
            "ltr" => a => a.ltr(ax),
            "lmsw" => a => a.lmsw(ax),
            "clts" => a => a.clts(),
            "invlpg" => a => a.invlpg(__[0x3000]),
            "wbinvd" => a => a.wbinvd(),
            "invd" => a => a.invd(),
            "rdmsr" => a => a.rdmsr(),
            "wrmsr" => a => a.wrmsr(),
            "mov cr0" => a => a.mov(cr0, eax),
            "mov from cr3" => a => a.mov(ebx, cr3),
            "mov cr3" => a => a.mov(cr3, eax),
            "mov dr7" => a => a.mov(dr7, eax),
            "mov from dr6" => a => a.mov(ebx, dr6),
            _ => a => a.hlt(),
        };
        var m = RunAt(CpuTier.BlockCache, 1, code);
        Assert.Equal(Vectors.GP, m.Event.Vector);
        Assert.Equal(0u, m.Event.ErrorCode);
        Assert.Equal(PM.CodeBase + 5, m.Event.InstructionEip);
        Assert.Equal(0x77u, m.Cpu.Ebx);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void StoresAreAllowedAtRing3(CpuTier bc)
    {
        var m = RunAt(bc, 3, a =>
        {
            a.sgdt(__[0x3000]);
            a.sidt(__[0x3010]);
            a.sldt(eax);
            a.str(ecx);
            a.smsw(edx);
        }, m => m.Cpu.Ldtr = SegmentCache.FromDescriptor(PM.LdtSel, m.GetGdt(PM.LdtSel >> 3)));
        Assert.Equal(0x31, m.Event.Vector);
        Assert.Equal((ushort)PM.GdtLimit, m.Memory.Read16(0x3000));
        Assert.Equal(PM.GdtBase, m.Memory.Read32(0x3002));
        Assert.Equal((ushort)(256 * 8 - 1), m.Memory.Read16(0x3010));
        Assert.Equal(PM.IdtBase, m.Memory.Read32(0x3012));
        Assert.Equal((uint)PM.LdtSel, m.Cpu.Eax);
        Assert.Equal((uint)PM.TssSel, m.Cpu.Ecx);
        Assert.Equal(m.Cpu.Cr0, m.Cpu.Edx);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void LoadTablesAndLtrMarksBusy(CpuTier bc)
    {
        var m = RunAt(bc, 0, a =>
        {
            a.mov(__word_ptr[0x3000], 0x7F);
            a.mov(__dword_ptr[0x3002], 0x20000);
            a.lidt(__[0x3000]);
            a.mov(eax, 9 * 8);
            a.ltr(ax);
            a.str(esi);
            a.mov(eax, PM.LdtSel);
            a.lldt(ax);
            a.sldt(edi);
        }, m =>
        {
            m.SetGdt(9, PM.Seg(PM.TssBase, 0x67, 0x89, g: false, big: false));
            m.Cpu.Tr = SegmentCache.Null(0);
        });
        Assert.Equal(0x31, m.Event.Vector);
        Assert.Equal(0x7Fu, m.Cpu.IdtrLimit);
        Assert.Equal(0x20000u, m.Cpu.IdtrBase);
        Assert.Equal(0x8B, m.Memory.Read8(PM.GdtBase + 9 * 8 + 5));
        Assert.Equal(9u * 8, m.Cpu.Esi);
        Assert.Equal(0xBu, (uint)m.Cpu.Tr.Type);
        Assert.Equal((uint)PM.LdtSel, m.Cpu.Edi);
        Assert.Equal(PM.LdtBase, m.Cpu.Ldtr.Base);
    }

    public static TheoryData<string, byte, uint> SystemLoadFailures() => new()
    {
        { "ltr busy tss", Vectors.GP, PM.TssSel },
        { "ltr null", Vectors.GP, 0 },
        { "ltr ldt selector", Vectors.GP, 0x0C },
        { "ltr data segment", Vectors.GP, PM.Data0 },
        { "ltr not present", Vectors.NP, 10 * 8 },
        { "lldt tss", Vectors.GP, PM.TssSel },
        { "lldt beyond gdt", Vectors.GP, 0x400 },
        { "lldt not present", Vectors.NP, 10 * 8 },
        { "mov cr1", Vectors.UD, 0 },
        { "mov cr4 reserved", Vectors.GP, 0 },
        { "mov cr0 pg without pe", Vectors.GP, 0 },
        { "mov dr4 with de", Vectors.UD, 0 },
        { "wrmsr efer reserved", Vectors.GP, 0 },
        { "rdmsr unknown", Vectors.GP, 0 },
    };

    [Theory]
    [MemberData(nameof(SystemLoadFailures))]
    public void SystemInstructionFailures(string name, byte vector, uint error)
    {
        Action<Assembler> code = name switch
        {
            "ltr busy tss" => a => { a.mov(eax, PM.TssSel); a.ltr(ax); },
            "ltr null" => a => { a.mov(eax, 0); a.ltr(ax); },
            "ltr ldt selector" => a => { a.mov(eax, 0x0C); a.ltr(ax); },
            "ltr data segment" => a => { a.mov(eax, PM.Data0); a.ltr(ax); },
            "ltr not present" => a => { a.mov(eax, 10 * 8); a.ltr(ax); },
            "lldt tss" => a => { a.mov(eax, PM.TssSel); a.lldt(ax); },
            "lldt beyond gdt" => a => { a.mov(eax, 0x400); a.lldt(ax); },
            "lldt not present" => a => { a.mov(eax, 10 * 8); a.lldt(ax); },
            "mov cr1" => a => { a.mov(eax, 0); a.db(0x0F, 0x20, 0xC8); },
            "mov cr4 reserved" => a => { a.mov(eax, 0x1000); a.mov(cr4, eax); },
            "mov cr0 pg without pe" => a => { a.mov(eax, 0x80000000); a.mov(cr0, eax); },
            "mov dr4 with de" => a => { a.mov(eax, cr4); a.or(eax, 8); a.mov(cr4, eax); a.db(0x0F, 0x21, 0xE0); },
            "wrmsr efer reserved" => a => { a.mov(ecx, 0xC0000080); a.mov(eax, 1); a.mov(edx, 0); a.wrmsr(); },
            _ => a => { a.mov(ecx, 0x1234); a.rdmsr(); },
        };
        var m = RunAt(CpuTier.BlockCache, 0, code, m =>
        {
            if (name == "ltr not present") m.SetGdt(10, PM.Seg(PM.TssBase, 0x67, 0x09, g: false, big: false));
            if (name == "lldt not present") m.SetGdt(10, PM.Seg(PM.LdtBase, 0x3F, 0x02, g: false, big: false));
        });
        CpuEvent e = m.Event;
        Assert.True(e.Vector == vector && e.ErrorCode == error, $"{name}: got {e}, want {vector} 0x{error:x}");
        Assert.Equal(e.InstructionEip, m.Cpu.Eip);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void DebugRegisterAliasesAndEfer(CpuTier bc)
    {
        var m = RunAt(bc, 0, a =>
        {
            a.mov(eax, 0x1);
            a.db(0x0F, 0x23, 0xE8);        // mov dr5, eax → DR7 (CR4.DE=0)
            a.mov(esi, dr7);
            a.mov(eax, 0xFFFFFFFF);
            a.mov(dr6, eax);
            a.db(0x0F, 0x21, 0xE7);        // mov edi, dr4 → DR6
            a.mov(ecx, 0xC0000080);
            a.mov(eax, 0x800);
            a.xor(edx, edx);
            a.wrmsr();
            a.xor(eax, eax);
            a.rdmsr();
            a.mov(ebp, eax);
            a.mov(eax, cr0);
            a.or(eax, 8);
            a.mov(cr0, eax);
            a.clts();
            a.mov(edx, cr0);
        });
        Assert.Equal(0x31, m.Event.Vector);
        Assert.Equal(0x401u, m.Cpu.Esi);
        Assert.Equal(0xFFFFEFFFu, m.Cpu.Edi);
        Assert.Equal(0x800u, m.Cpu.Ebp);
        Assert.Equal(0x800ul, m.Cpu.Efer);
        Assert.Equal(0u, m.Cpu.Edx & Cr0Bits.TS);
    }
}
