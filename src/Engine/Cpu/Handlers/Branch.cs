using Iced.Intel;
using Replayvisor.Engine.Cpu.Decode;

namespace Replayvisor.Engine.Cpu.Handlers;

/// <summary>Near jmp/jcc/call/ret, loop family, jcxz, setcc, cmovcc (SDM vol. 2).</summary>
internal static unsafe class Branch
{
    public static delegate*<X86Cpu, ref DecodedInsn, void> Select(ref DecodedInsn d)
    {
        var insn = d.Insn;
        switch (insn.Mnemonic)
        {
            case Mnemonic.Jmp:
                if (insn.Op0Kind is OpKind.NearBranch32 or OpKind.NearBranch16) return &JmpRel;
                if (insn.Op0Kind is OpKind.Register or OpKind.Memory && !IsFar(insn)) return &JmpIndirect;
                return null;
            case Mnemonic.Call:
                if (insn.Op0Kind is OpKind.NearBranch32 or OpKind.NearBranch16) return &CallRel;
                if (insn.Op0Kind is OpKind.Register or OpKind.Memory && !IsFar(insn)) return &CallIndirect;
                return null;
            case Mnemonic.Ret:
                return d.Size == 4 && insn.OpCount == 0 ? &Ret32 : &RetNear;
            case Mnemonic.Loop: d.Cc = 0; d.AddrSize = CounterSize(insn); return &Loop;
            case Mnemonic.Loope: d.Cc = 1; d.AddrSize = CounterSize(insn); return &Loop;
            case Mnemonic.Loopne: d.Cc = 2; d.AddrSize = CounterSize(insn); return &Loop;
            case Mnemonic.Jcxz: d.AddrSize = 2; return &Jcxz;
            case Mnemonic.Jecxz: d.AddrSize = 4; return &Jcxz;
        }
        int cc = ConditionOf(insn.ConditionCode);
        if (cc < 0) return null;
        d.Cc = (byte)cc;
        if (insn.IsJccShortOrNear) return &Jcc;
        if (insn.Mnemonic is >= Mnemonic.Seta and <= Mnemonic.Setp || insn.Mnemonic == Mnemonic.Sets) { d.Size = 1; return &Setcc; }
        if (insn.Mnemonic is >= Mnemonic.Cmova and <= Mnemonic.Cmovs) return &Cmovcc;
        return null;
    }

    private static bool IsFar(in Instruction insn) =>
        insn.Op0Kind == OpKind.Memory && insn.MemorySize is MemorySize.SegPtr16 or MemorySize.SegPtr32;

    /// <summary>loop uses CX or ECX per the address size (SDM vol. 2 LOOP); Iced encodes the counter in the code, not as an operand.</summary>
    private static byte CounterSize(in Instruction insn) => insn.Code switch
    {
        Code.Loop_rel8_16_CX or Code.Loop_rel8_32_CX or Code.Loope_rel8_16_CX or Code.Loope_rel8_32_CX
            or Code.Loopne_rel8_16_CX or Code.Loopne_rel8_32_CX => 2,
        _ => 4,
    };

    /// <summary>Maps Iced's condition to the x86 cc nibble.</summary>
    private static int ConditionOf(ConditionCode c) => c switch
    {
        ConditionCode.o => 0, ConditionCode.no => 1, ConditionCode.b => 2, ConditionCode.ae => 3,
        ConditionCode.e => 4, ConditionCode.ne => 5, ConditionCode.be => 6, ConditionCode.a => 7,
        ConditionCode.s => 8, ConditionCode.ns => 9, ConditionCode.p => 10, ConditionCode.np => 11,
        ConditionCode.l => 12, ConditionCode.ge => 13, ConditionCode.le => 14, ConditionCode.g => 15,
        _ => -1,
    };

    /// <summary>Transfers to a near target, checking it against the CS limit (#GP(0), SDM vol. 2 JMP).</summary>
    public static void JumpTo(X86Cpu c, uint target, int size)
    {
        if (size == 2) target &= 0xFFFF;
        if (target > c.Segs[Seg.CS].Limit) { c.RaiseGp(0); return; }
        c.Eip = target;
        c.Exit |= CpuExit.Branch;
    }

    private static void JmpRel(X86Cpu c, ref DecodedInsn d) => JumpTo(c, d.Imm, d.Size);

    private static void JmpIndirect(X86Cpu c, ref DecodedInsn d)
    {
        uint t = c.ReadOp0(ref d);
        if (!c.Faulted) JumpTo(c, t, d.Size);
    }

    private static void Jcc(X86Cpu c, ref DecodedInsn d)
    {
        int cc = d.Cc;
        bool take;
        // jz/jnz after any lazily recorded operation: ZF is the result being zero.
        if ((cc & ~1) == 4 && c.CcKind != CcOp.None) take = ((c.CcRes & X86Cpu.SizeMask(c.CcSize)) == 0) != ((cc & 1) != 0);
        else take = c.Condition(cc);
        if (take) JumpTo(c, d.Imm, d.Size);
    }

    private static void CallRel(X86Cpu c, ref DecodedInsn d) => CallTo(c, d.Imm, d.Size);

    private static void CallIndirect(X86Cpu c, ref DecodedInsn d)
    {
        uint t = c.ReadOp0(ref d);
        if (!c.Faulted) CallTo(c, t, d.Size);
    }

    private static void CallTo(X86Cpu c, uint target, int size)
    {
        if (size == 2) target &= 0xFFFF;
        if (target > c.Segs[Seg.CS].Limit) { c.RaiseGp(0); return; }
        if (size == 4) c.Push32(c.Eip); else c.Push(c.Eip, size);
        if (c.Faulted) return;
        c.Eip = target;
        c.Exit |= CpuExit.Branch;
    }

    /// <summary>ret with a 32-bit operand size and no immediate.</summary>
    private static void Ret32(X86Cpu c, ref DecodedInsn d)
    {
        if (c.Segs[Seg.SS].Big)
        {
            uint sp = c.Gpr[Reg.ESP];
            uint t4 = c.Read32(Seg.SS, sp);
            if (c.Faulted) return;
            if (t4 > c.Segs[Seg.CS].Limit) { c.RaiseGp(0); return; }
            c.Gpr[Reg.ESP] = sp + 4;
            c.Eip = t4;
            c.Exit |= CpuExit.Branch;
            return;
        }
        RetNear(c, ref d);
    }

    private static void RetNear(X86Cpu c, ref DecodedInsn d)
    {
        int size = d.Size;
        uint t = c.PeekStack(size);
        if (c.Faulted) return;
        if (size == 2) t &= 0xFFFF;
        if (t > c.Segs[Seg.CS].Limit) { c.RaiseGp(0); return; }
        c.AdjustStack((uint)size + (d.Insn.OpCount > 0 ? d.Imm & 0xFFFF : 0));
        c.Eip = t;
        c.Exit |= CpuExit.Branch;
    }

    private static void Loop(X86Cpu c, ref DecodedInsn d)
    {
        uint mask = d.AddrSize == 4 ? 0xFFFFFFFF : 0xFFFF;
        uint cnt = (c.Ecx - 1) & mask;
        bool take = cnt != 0 && (d.Cc == 0 || (d.Cc == 1 ? c.ZF : !c.ZF));
        if (take)
        {
            uint t = d.Size == 2 ? d.Imm & 0xFFFF : d.Imm;
            if (t > c.Segs[Seg.CS].Limit) { c.RaiseGp(0); return; }
            c.Eip = t;
            c.Exit |= CpuExit.Branch;
        }
        c.Ecx = (c.Ecx & ~mask) | cnt;
    }

    private static void Jcxz(X86Cpu c, ref DecodedInsn d)
    {
        uint cnt = d.AddrSize == 4 ? c.Ecx : c.Ecx & 0xFFFF;
        if (cnt == 0) JumpTo(c, d.Imm, d.Size);
    }

    private static void Setcc(X86Cpu c, ref DecodedInsn d)
    {
        c.WriteOp0(ref d, c.Condition(d.Cc) ? 1u : 0u);
    }

    /// <summary>cmovcc reads its source even when the condition is false (SDM vol. 2 CMOVcc: a fault may occur).</summary>
    private static void Cmovcc(X86Cpu c, ref DecodedInsn d)
    {
        uint v = c.ReadOp1(ref d);
        if (c.Faulted) return;
        if (c.Condition(d.Cc)) c.SetReg(d.R0, d.Size, v);
    }
}
