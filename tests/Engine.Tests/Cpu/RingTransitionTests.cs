using Replayvisor.Engine.Cpu;
using static Iced.Intel.AssemblerRegisters;
using PM = Replayvisor.Engine.Tests.Cpu.ProtectedModeMachine;

namespace Replayvisor.Engine.Tests.Cpu;

/// <summary>iret, far call/jmp/ret, call gates and IDT delivery across rings 0, 1 and 3.</summary>
public class RingTransitionTests
{
    private const uint Ring3Code = 0x2000, Ring1Handler = 0x3000, Ring0Handler = 0x4000, DfHandler = 0x5000;
    private const ushort GateSel = 9 * 8;

    /// <summary>A native-IDT machine: int 0x80 (DPL 3 trap gate) enters ring 1; int 0x90 (DPL 3 interrupt gate) enters ring 0 and halts.</summary>
    private static PM NativeMachine(CpuTier bc)
    {
        var m = new PM(bc, native: true);
        m.SetIdt(0x80, PM.Code1 & 0xFFFC, Ring1Handler, 0xEF);
        m.SetIdt(0x90, PM.Code0, Ring0Handler, 0xEE);
        m.Code(Ring0Handler, a => a.hlt());
        return m;
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void IretToRing3AndInterruptGateBackToRing1(CpuTier bc)
    {
        uint afterInt80 = 0;
        var m = Modes.Run(bc, b =>
        {
            var m = NativeMachine(b);
            m.Enter(1);
            m.Load(a =>
            {
                a.mov(eax, PM.Data1);
                a.mov(ds, ax);           // DPL 1: nulled by the return to ring 3
                a.mov(eax, PM.Data3);
                a.mov(es, ax);           // DPL 3: kept
                a.push(PM.Data3);
                a.push(PM.Stack3);
                a.push(0x3202);          // IOPL 3, IF: neither can change at CPL 1 with IOPL 0
                a.push(PM.Code3);
                a.push(Ring3Code);
                a.iretd();
            });
            afterInt80 = m.Code(Ring3Code, a =>
            {
                a.mov(ebx, ds);
                a.mov(ecx, 0x1234);
                a.@int(0x80);
            });
            m.Code(afterInt80, a =>
            {
                a.mov(edx, 0x5678);
                a.@int(0x90);
            });
            m.Code(Ring1Handler, a =>
            {
                a.mov(esi, esp);
                a.mov(edi, __dword_ptr[esp + 16]);
                a.mov(ebp, __dword_ptr[esp]);
                a.iretd();
            });
            m.Run();
            return m;
        });
        var c = m.Cpu;
        Assert.False(m.Native!.TripleFault);
        Assert.Equal(1, m.Native.Halts);
        Assert.Equal(0, c.Cpl);
        Assert.Equal(0u, c.Ebx);                        // DS was nulled on the way to ring 3
        Assert.Equal(PM.Stack1 - 20, c.Esi);            // ring-1 frame from the TSS stack: SS, ESP, EFLAGS, CS, EIP
        Assert.Equal((uint)PM.Data3, c.Edi);
        Assert.Equal(afterInt80, c.Ebp);
        Assert.Equal(0x5678u, c.Edx);
        Assert.Equal(PM.Stack0 - 20, c.Esp);
        Assert.Equal(PM.Data0, c.Segs[Seg.SS].Selector);
        Assert.Equal(PM.Code0, c.Segs[Seg.CS].Selector);
        Assert.Equal(PM.Data3, c.Segs[Seg.ES].Selector);
        Assert.Equal((uint)PM.Data3, m.Memory.Read32(PM.Stack0 - 4));
        Assert.Equal(PM.Stack3, m.Memory.Read32(PM.Stack0 - 8));
        Assert.Equal(0x2u, m.Memory.Read32(PM.Stack0 - 12));   // IF and IOPL unchanged by the ring-1 iret
        Assert.Equal((uint)PM.Code3, m.Memory.Read32(PM.Stack0 - 16));
        Assert.Equal(afterInt80 + 7, m.Memory.Read32(PM.Stack0 - 20));
        Assert.Equal(20ul, c.Icount);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void CallGateRing3ToRing1AndRetFarBack(CpuTier bc)
    {
        var m = Modes.Run(bc, b =>
        {
            var m = NativeMachine(b);
            m.SetGdt(9, PM.Gate(PM.Code1 & 0xFFFC, Ring1Handler, 0xEC, paramCount: 2));
            m.Enter(3);
            m.Load(a =>
            {
                a.push(0x11111111);
                a.push(0x22222222);
                a.call(GateSel | 3, 0);
                a.mov(edx, esp);
                a.mov(ebp, cs);
                a.@int(0x90);
            });
            m.Code(Ring1Handler, a =>
            {
                a.mov(eax, __dword_ptr[esp + 8]);
                a.mov(ebx, __dword_ptr[esp + 12]);
                a.mov(ecx, __dword_ptr[esp + 16]);
                a.mov(esi, __dword_ptr[esp + 20]);
                a.mov(edi, esp);
                a.mov(__dword_ptr[0x3F00], cs);
                a.retf(8);
            });
            m.Run();
            return m;
        });
        var c = m.Cpu;
        Assert.Equal(0x22222222u, c.Eax);
        Assert.Equal(0x11111111u, c.Ebx);
        Assert.Equal(PM.Stack3 - 8, c.Ecx);
        Assert.Equal((uint)PM.Data3, c.Esi);
        Assert.Equal(PM.Stack1 - 24, c.Edi);
        Assert.Equal(PM.Code1, m.Memory.Read16(0x3F00));
        Assert.Equal(PM.Stack3, c.Edx);
        Assert.Equal((uint)PM.Code3, c.Ebp);
        Assert.Equal(1, m.Native!.Halts);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void FarJmpCallRetSameRing(CpuTier bc)
    {
        var m = Modes.Run(bc, b =>
        {
            var m = new PM(b);
            m.SetGdt(10, PM.Seg(0x100000, 0xFFFF, 0x9A, g: false)); // ring-0 code at 0x100000, not accessed
            m.SetGdt(11, PM.Seg(0, 0xFFFFF, 0x9E));                  // conforming readable ring-0 code
            m.Code(0x100010, a => { a.mov(eax, cs); a.retf(); });
            m.Code(0x100020, a => { a.mov(ecx, cs); a.jmp(0x58, 0x6000); });
            m.Code(0x6000, a => { a.mov(edi, cs); a.@int(0x31); });
            m.Load(a =>
            {
                a.call(0x50, 0x10);
                a.mov(ebx, 1);
                a.jmp(0x50, 0x20);
            });
            m.Run();
            return m;
        });
        var c = m.Cpu;
        Assert.Equal(0x31, m.Event.Vector);
        Assert.Equal(EventKind.SoftwareInterrupt, m.Event.Kind);
        Assert.Equal(0x50u, c.Eax);
        Assert.Equal(1u, c.Ebx);
        Assert.Equal(0x50u, c.Ecx);
        Assert.Equal(0x58u, c.Edi);
        Assert.Equal(PM.Stack0, c.Esp);
        Assert.Equal(0x9B, m.Memory.Read8(PM.GdtBase + 10 * 8 + 5));
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void ConformingCallKeepsCpl(CpuTier bc)
    {
        var m = Modes.Run(bc, b =>
        {
            var m = new PM(b);
            m.SetGdt(11, PM.Seg(0, 0xFFFFF, 0x9E));
            m.Enter(3);
            m.Code(0x6000, a => { a.mov(eax, cs); a.retf(); });
            m.Load(a => { a.call(0x58, 0x6000); a.mov(ebx, cs); a.@int(0x31); });
            m.Run();
            return m;
        });
        Assert.Equal(0x5Bu, m.Cpu.Eax);
        Assert.Equal((uint)PM.Code3, m.Cpu.Ebx);
        Assert.Equal(3, m.Cpu.Cpl);
    }

    public static TheoryData<string, byte, uint> TransferFailures() => new()
    {
        { "call gate dpl 0 from ring 3", Vectors.GP, GateSel },
        { "jmp through gate to inner ring", Vectors.GP, PM.Code1 & 0xFFFC },
        { "tss ss1 rpl 3", Vectors.TS, PM.Data3 & 0xFFFC },
        { "tss ss1 null", Vectors.TS, 0 },
        { "tss ss1 not present", Vectors.SS, 10 * 8 },
        { "call to data segment", Vectors.GP, PM.Data3 & 0xFFFC },
        { "call to not-present code", Vectors.NP, 10 * 8 },
        { "jmp to null", Vectors.GP, 0 },
        { "jmp to tss", Vectors.GP, PM.TssSel },
        { "jmp to ring-0 code from ring 3", Vectors.GP, PM.Code0 },
        { "retf to ring 0 from ring 3", Vectors.GP, PM.Code0 },
        { "iret with nt", Vectors.GP, 0 },
        { "iret to eip beyond limit", Vectors.GP, 0 },
        { "iret to ring 3 with ss rpl 1", Vectors.GP, PM.Data1 & 0xFFFC },
        { "iret cs null", Vectors.GP, 0 },
        { "gate not present", Vectors.NP, GateSel },
        { "new stack too small", Vectors.SS, 10 * 8 },
    };

    [Theory]
    [MemberData(nameof(TransferFailures))]
    public void FarTransferFailures(string name, byte vector, uint error)
    {
        var m = Modes.Run(CpuTier.BlockCache, b =>
        {
            var m = new PM(b);
            int ring = 3;
            bool nt = false;
            var gate = PM.Gate(PM.Code1 & 0xFFFC, Ring1Handler, 0xEC);
            Action<Iced.Intel.Assembler> code;
            switch (name)
            {
                case "call gate dpl 0 from ring 3":
                    gate = PM.Gate(PM.Code1 & 0xFFFC, Ring1Handler, 0x8C);
                    code = a => a.call(GateSel | 3, 0); break;
                case "jmp through gate to inner ring": code = a => a.jmp(GateSel | 3, 0); break;
                case "tss ss1 rpl 3": m.Memory.Write32(PM.TssBase + 0x10, PM.Data3); code = a => a.call(GateSel | 3, 0); break;
                case "tss ss1 null": m.Memory.Write32(PM.TssBase + 0x10, 0); code = a => a.call(GateSel | 3, 0); break;
                case "tss ss1 not present":
                    m.SetGdt(10, PM.Seg(0, 0xFFFFF, 0x33));
                    m.Memory.Write32(PM.TssBase + 0x10, 10 * 8 + 1); code = a => a.call(GateSel | 3, 0); break;
                case "call to data segment": code = a => a.call(PM.Data3, 0); break;
                case "call to not-present code": m.SetGdt(10, PM.Seg(0, 0xFFFFF, 0x7B)); code = a => a.call(10 * 8 + 3, 0); break;
                case "jmp to null": code = a => a.jmp(3, 0); break;
                case "jmp to tss": code = a => a.jmp(PM.TssSel, 0); break;
                case "jmp to ring-0 code from ring 3": code = a => a.jmp(PM.Code0, 0); break;
                case "retf to ring 0 from ring 3": code = a => { a.push(PM.Code0); a.push(0x1000); a.retf(); }; break;
                case "iret with nt":
                    ring = 1;
                    nt = true;
                    code = a => a.iretd(); break;
                case "iret to eip beyond limit":
                    ring = 1;
                    m.SetGdt(10, PM.Seg(0, 0xFFF, 0xFB, g: false));
                    code = a => { a.push(PM.Data3); a.push(PM.Stack3); a.push(2); a.push(10 * 8 + 3); a.push(0x1000); a.iretd(); }; break;
                case "iret to ring 3 with ss rpl 1":
                    ring = 1;
                    code = a => { a.push(PM.Data1); a.push(PM.Stack3); a.push(2); a.push(PM.Code3); a.push(0x1000); a.iretd(); }; break;
                case "iret cs null":
                    ring = 1;
                    code = a => { a.push(2); a.push(0); a.push(0x1000); a.iretd(); }; break;
                case "new stack too small":
                    m.SetGdt(10, PM.Seg(0, 0xFFF, 0xB3, g: false));
                    m.Memory.Write32(PM.TssBase + 0xC, 8);
                    m.Memory.Write32(PM.TssBase + 0x10, 10 * 8 + 1); code = a => a.call(GateSel | 3, 0); break;
                case "gate not present":
                    gate = PM.Gate(PM.Code1 & 0xFFFC, Ring1Handler, 0x6C);
                    code = a => a.call(GateSel | 3, 0); break;
                default: throw new ArgumentException(name);
            }
            m.SetGdt(9, gate);
            m.Enter(ring);
            if (nt) m.Cpu.Eflags |= Fl.NT;
            m.Load(a => { a.mov(ebx, 0x77); code(a); });
            m.Run();
            return m;
        });
        CpuEvent e = m.Event;
        Assert.True(e.Vector == vector && e.ErrorCode == error, $"{name}: got {e}, want vector {vector} error 0x{error:x}");
        Assert.Equal(e.InstructionEip, m.Cpu.Eip);
    }

    [Theory]
    [InlineData(0, 0x3202u, 0x3202u)]   // CPL 0: IOPL and IF both load
    [InlineData(1, 0x3202u, 0x0002u)]   // CPL 1 > IOPL 0: neither changes
    [InlineData(3, 0x0FD7u, 0x0DD7u)]   // arithmetic flags, DF, TF, OF load; IF does not at CPL 3 > IOPL 0
    public void IretEflagsRules(int ring, uint pushed, uint expected)
    {
        var m = Modes.Run(CpuTier.BlockCache, b =>
        {
            var m = new PM(b);
            m.Enter(ring);
            ushort cs = ring switch { 0 => PM.Code0, 1 => PM.Code1, _ => PM.Code3 };
            m.Load(a => { a.push(pushed); a.push(cs); a.push(0x1100); a.iretd(); });
            m.Code(0x1100, a => a.@int(0x31));
            m.Run(4);
            return m;
        });
        Assert.Equal(expected, m.Cpu.Eflags);
        Assert.Equal(0x1100u, m.Cpu.Eip);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void IntNDplCheckFromRing3(CpuTier bc)
    {
        uint intEip = 0;
        var m = Modes.Run(bc, b =>
        {
            var m = NativeMachine(b);
            m.SetIdt(0x40, PM.Code0, Ring0Handler, 0x8E);       // DPL 0
            m.SetIdt(Vectors.GP, PM.Code0, 0x4100, 0x8E);
            m.Code(0x4100, a => { a.pop(eax); a.mov(ebx, __dword_ptr[esp]); a.hlt(); });
            m.Enter(3);
            intEip = m.Code(PM.CodeBase, a => a.nop());
            m.Code(intEip, a => a.@int(0x40));
            m.Run();
            return m;
        });
        Assert.Equal(0x40u * 8 + 2, m.Cpu.Eax);
        Assert.Equal(intEip, m.Cpu.Ebx);                  // #GP reported at the int instruction
        Assert.Equal(PM.Stack0 - 20, m.Cpu.Esp);            // SS, ESP, EFLAGS, CS, EIP remain after popping the error code
        Assert.Equal(0, m.Cpu.Cpl);
        Assert.Equal(1, m.Native!.Halts);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void ContributoryFaultDuringDeliveryBecomesDoubleFault(CpuTier bc)
    {
        var m = Modes.Run(bc, b =>
        {
            var m = NativeMachine(b);
            m.SetIdt(Vectors.GP, PM.Code0, 0x4100, 0x0E);                 // not present: #NP(13*8+2+1)
            m.SetIdt(Vectors.DF, PM.Code0, DfHandler, 0x8E);
            m.Code(DfHandler, a => { a.pop(eax); a.mov(ebx, __dword_ptr[esp]); a.hlt(); });
            m.Load(a => { a.mov(eax, 0x3FB); a.mov(ds, ax); });
            m.Run();
            return m;
        });
        Assert.False(m.Native!.TripleFault);
        Assert.Equal(0u, m.Cpu.Eax);
        Assert.Equal(PM.CodeBase + 5, m.Cpu.Ebx);
        Assert.Equal(Vectors.DF, m.Native.LastDelivered.Vector);
        Assert.Equal(0x10002u, m.Memory.Read32(PM.Stack0 - 4));         // pushed EFLAGS of a fault has RF set
        Assert.Equal((uint)PM.Code0, m.Memory.Read32(PM.Stack0 - 8));
        Assert.Equal(PM.Stack0 - 12, m.Cpu.Esp);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void FaultDeliveringDoubleFaultIsTripleFault(CpuTier bc)
    {
        var m = Modes.Run(bc, b =>
        {
            var m = NativeMachine(b);
            m.Cpu.IdtrLimit = 8 * 8 - 1;   // vectors 8 and 13 beyond the IDT limit
            m.Load(a => { a.mov(eax, 0x3FB); a.mov(ds, ax); a.nop(); });
            var r = m.Run();
            Assert.Equal(StopReason.Stopped, r);
            return m;
        });
        Assert.True(m.Native!.TripleFault);
        Assert.Equal(1ul, m.Cpu.Icount);
        Assert.Equal(0L, m.Native.Delivered);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void SoftwareInterruptKinds(CpuTier bc)
    {
        var m = Modes.Run(bc, b =>
        {
            var m = new PM(b);
            m.Rec!.StopOnEvent = false;
            m.Load(a =>
            {
                a.@int(0x80);
                a.int3();
                a.xor(eax, eax);
                a.into();                // OF=0: nothing
                a.mov(eax, 0x7FFFFFFF);
                a.add(eax, 1);
                a.into();                // OF=1: #OF trap
                a.int1();
                a.hlt();
            });
            m.Run();
            return m;
        });
        var ev = m.Rec!.Events;
        Assert.Equal(4, ev.Count);
        Assert.Equal((0x80, EventKind.SoftwareInterrupt), (ev[0].Vector, ev[0].Kind));
        Assert.Equal((Vectors.BP, EventKind.Trap), (ev[1].Vector, ev[1].Kind));
        Assert.Equal((Vectors.OF, EventKind.Trap), (ev[2].Vector, ev[2].Kind));
        Assert.Equal((Vectors.DB, EventKind.Trap), (ev[3].Vector, ev[3].Kind));
        Assert.All(ev, e => Assert.False(e.HasErrorCode));
        Assert.Equal(9ul, m.Cpu.Icount);
    }
}
