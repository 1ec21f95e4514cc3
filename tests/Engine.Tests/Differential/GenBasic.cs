using Iced.Intel;
using Replayvisor.Engine.Cpu;
using static Replayvisor.Engine.Tests.Differential.CaseBuilder;

namespace Replayvisor.Engine.Tests.Differential;

/// <summary>Generators for the families on this branch: data movement, ALU, logic, stack, branches, flag ops, faults.</summary>
public static partial class Gen
{
    private static readonly string[] ArithOps = ["Add", "Adc", "Sub", "Sbb", "Cmp"];
    private static readonly string[] LogicOps = ["And", "Or", "Xor"];

    private static string S(int size) => (size * 8).ToString();

    /// <summary>A register or a memory operand of the size holding a fresh value; memory first so its address registers are fixed.</summary>
    private static bool RmWithValue(CaseBuilder b, int size, out int reg, out MemoryOperand mem, int memPercent = 40)
    {
        if (b.Chance(memPercent)) { mem = b.MemWithValue(size, out _, out _); reg = -1; return true; }
        reg = b.RegWithValue(size, out _); mem = default; return false;
    }

    private static Instruction Rm(Code code, CaseBuilder b, bool isMem, int reg, MemoryOperand mem, int size) =>
        isMem ? Instruction.Create(code, mem) : Instruction.Create(code, R(reg, size));

    /// <summary>op rm,r / r,rm / rm,imm / rm,imm8 (sign-extended) / acc,imm with every operand size.</summary>
    private static void TwoOperand(CaseBuilder b, string op, uint undefinedFlags)
    {
        int size = b.Size();
        string s = S(size);
        bool test = op == "Test";
        switch (b.Rng.Next(5))
        {
            case 0: // register, register (either encoding direction)
            {
                int d = b.RegWithValue(size, out _), src = b.RegWithValue(size, out _);
                string form = test || b.Chance(50) ? $"rm{s}_r{s}" : $"r{s}_rm{s}";
                b.Emit(Instruction.Create(Op(op, form), R(d, size), R(src, size)));
                break;
            }
            case 1: // memory, register
            {
                var m = b.MemWithValue(size, out _, out _);
                int src = b.RegWithValue(size, out _);
                b.Emit(Instruction.Create(Op(op, $"rm{s}_r{s}"), m, R(src, size)));
                break;
            }
            case 2: // register, memory
            {
                if (test) goto case 1;
                var m = b.MemWithValue(size, out _, out _);
                int d = b.RegWithValue(size, out _);
                b.Emit(Instruction.Create(Op(op, $"r{s}_rm{s}"), R(d, size), m));
                break;
            }
            case 3: // register or memory, immediate
            {
                bool isMem = RmWithValue(b, size, out int reg, out var m);
                int imm;
                Code code;
                if (size != 1 && !test && b.Chance(50)) { code = Op(op, $"rm{s}_imm8"); imm = (sbyte)b.Value(1); }
                else { code = Op(op, $"rm{s}_imm{s}"); imm = (int)b.Value(size); if (size == 1) imm = (sbyte)imm; else if (size == 2) imm = (short)imm; }
                b.Emit(isMem ? Instruction.Create(code, m, imm) : Instruction.Create(code, R(reg, size), imm));
                break;
            }
            default: // accumulator, immediate (short forms)
            {
                if (b.IsFixed(0)) goto case 3; // EAX already has a fixed role (an address, AH for sahf...)
                b.Fix(0);
                uint v = b.Value(size);
                b.SetReg(0, size, v);
                int imm = (int)b.Value(size);
                if (size == 1) imm = (sbyte)imm; else if (size == 2) imm = (short)imm;
                string form = size switch { 1 => "AL_imm8", 2 => "AX_imm16", _ => "EAX_imm32" };
                b.Emit(Instruction.Create(Op(op, form), R(0, size), imm));
                break;
            }
        }
        b.FlagsWritten(Fl.Arith, undefinedFlags);
    }

    /// <summary>inc, dec, neg, not on a register or memory (and the one-byte inc/dec r16/r32 forms).</summary>
    private static void OneOperand(CaseBuilder b, string op)
    {
        int size = b.Size();
        if ((op == "Inc" || op == "Dec") && size != 1 && b.Chance(30))
        {
            int r = b.RegWithValue(size, out _);
            b.Emit(Instruction.Create(Op(op, $"r{S(size)}"), R(r, size)));
        }
        else
        {
            bool isMem = RmWithValue(b, size, out int reg, out var m);
            b.Emit(Rm(Op(op, $"rm{S(size)}"), b, isMem, reg, m, size));
        }
        if (op is "Inc" or "Dec") b.FlagsWritten(Fl.Arith & ~Fl.CF, 0);
        else if (op == "Neg") b.FlagsWritten(Fl.Arith, 0);
    }

    public static void Alu(CaseBuilder b)
    {
        int n = b.Chance(20) ? 2 : 1;
        for (int i = 0; i < n; i++)
        {
            int k = b.Rng.Next(10);
            if (k < 7) TwoOperand(b, b.Pick(ArithOps), 0);
            else OneOperand(b, b.Pick("Inc", "Dec", "Neg"));
            if (b.Chance(50)) b.FlagConsumer();
        }
    }

    public static void Logic(CaseBuilder b)
    {
        int k = b.Rng.Next(10);
        if (k < 6) TwoOperand(b, b.Pick(LogicOps), SdmUndefined.Flags(Mnemonic.And, 4));
        else if (k < 8) TwoOperand(b, "Test", SdmUndefined.Flags(Mnemonic.Test, 4));
        else OneOperand(b, "Not");
        if (b.Chance(50)) b.FlagConsumer();
    }

    public static void DataMove(CaseBuilder b)
    {
        switch (b.Rng.Next(8))
        {
            case 0: case 1: // mov in every form
            {
                int size = b.Size();
                string s = S(size);
                switch (b.Rng.Next(5))
                {
                    case 0: { int d = b.RegOf(size), src = b.RegWithValue(size, out _); b.Emit(Instruction.Create(Op("Mov", b.Chance(50) ? $"rm{s}_r{s}" : $"r{s}_rm{s}"), R(d, size), R(src, size))); break; }
                    case 1: { var m = b.MemWithValue(size, out _, out _); int d = b.RegOf(size); b.Emit(Instruction.Create(Op("Mov", $"r{s}_rm{s}"), R(d, size), m)); break; }
                    case 2: { var m = b.Mem(b.MemOffset(size)); int src = b.RegWithValue(size, out _); b.Emit(Instruction.Create(Op("Mov", $"rm{s}_r{s}"), m, R(src, size))); break; }
                    case 3: { int d = b.RegOf(size); int imm = (int)b.Value(size); b.Emit(Instruction.Create(Op("Mov", b.Chance(50) ? $"r{s}_imm{s}" : $"rm{s}_imm{s}"), R(d, size), size == 1 ? (sbyte)imm : size == 2 ? (short)imm : imm)); break; }
                    default: { var m = b.Mem(b.MemOffset(size)); int imm = (int)b.Value(size); b.Emit(Instruction.Create(Op("Mov", $"rm{s}_imm{s}"), m, size == 1 ? (sbyte)imm : size == 2 ? (short)imm : imm)); break; }
                }
                break;
            }
            case 2: // movzx / movsx
            {
                string op = b.Pick("Movzx", "Movsx");
                var (dst, src) = b.Pick((2, 1), (4, 1), (4, 2));
                bool isMem = b.Chance(40);
                MemoryOperand m = isMem ? b.MemWithValue(src, out _, out _) : default;
                int sr = isMem ? -1 : b.RegWithValue(src, out _);
                int d = b.RegOf(dst);
                var code = Op(op, $"r{S(dst)}_rm{S(src)}");
                b.Emit(isMem ? Instruction.Create(code, R(d, dst), m) : Instruction.Create(code, R(d, dst), R(sr, src)));
                break;
            }
            case 3: // xchg
            {
                int size = b.Size();
                if (size != 1 && b.Chance(25))
                {
                    b.Fix(0); b.SetReg(0, size, b.Value(size));
                    int r = b.RegWithValue(size, out _);
                    b.Emit(Instruction.Create(Op("Xchg", size == 2 ? "r16_AX" : "r32_EAX"), R(r, size), R(0, size)));
                }
                else if (b.Chance(50))
                {
                    var m = b.MemWithValue(size, out _, out _);
                    int r = b.RegWithValue(size, out _);
                    b.Emit(Instruction.Create(Op("Xchg", $"rm{S(size)}_r{S(size)}"), m, R(r, size)));
                }
                else
                {
                    int d = b.RegWithValue(size, out _), r = b.RegWithValue(size, out _);
                    b.Emit(Instruction.Create(Op("Xchg", $"rm{S(size)}_r{S(size)}"), R(d, size), R(r, size)));
                }
                break;
            }
            case 4: // lea: any addressing mode, no memory access
            {
                int size = b.Pick(2, 4);
                var m = b.Mem(b.MemOffset(1));
                int d = b.RegOf(size);
                b.Emit(Instruction.Create(size == 4 ? Code.Lea_r32_m : Code.Lea_r16_m, R(d, size), m));
                break;
            }
            case 5: case 6: // cmovcc
            {
                int size = b.Pick(2, 4);
                int cc = b.Rng.Next(16);
                bool isMem = b.Chance(40);
                MemoryOperand m = isMem ? b.MemWithValue(size, out _, out _) : default;
                int sr = isMem ? -1 : b.RegWithValue(size, out _);
                int d = b.RegWithValue(size, out _);
                var code = CmovCode(cc, size);
                b.Emit(isMem ? Instruction.Create(code, R(d, size), m) : Instruction.Create(code, R(d, size), R(sr, size)));
                break;
            }
            default: // setcc
            {
                int cc = b.Rng.Next(16);
                if (b.Chance(40)) b.Emit(Instruction.Create(SetccCode(cc), b.Mem(b.MemOffset(1))));
                else b.Emit(Instruction.Create(SetccCode(cc), R(b.Reg8(), 1)));
                break;
            }
        }
    }

    public static void Stack(CaseBuilder b)
    {
        int n = b.Rng.Next(1, 5);
        for (int i = 0; i < n; i++)
        {
            int size = b.Chance(25) ? 2 : 4;
            string s = S(size);
            switch (b.Rng.Next(8))
            {
                case 0: b.Emit(Instruction.Create(Op("Push", $"r{s}"), R(b.RegWithValue(size, out _), size))); break;
                case 1: b.Emit(Instruction.Create(size == 2 ? Code.Pushw_imm8 : Code.Pushd_imm8, (sbyte)b.Value(1))); break;
                case 2: b.Emit(Instruction.Create(size == 2 ? Code.Push_imm16 : Code.Pushd_imm32, size == 2 ? (short)b.Value(2) : (int)b.Value(4))); break;
                case 3: b.Emit(Instruction.Create(Op("Push", $"rm{s}"), b.MemWithValue(size, out _, out _))); break;
                case 4: b.Emit(Instruction.Create(Op("Pop", $"r{s}"), R(b.RegOf(size), size))); break;
                case 5: b.Emit(Instruction.Create(Op("Pop", $"rm{s}"), b.Mem(b.MemOffset(size)))); break;
                case 6: // pop to an ESP-relative address: the address uses ESP after the increment (SDM vol. 2 POP)
                    b.Emit(Instruction.Create(Op("Pop", $"rm{s}"), new MemoryOperand(Register.ESP, b.Rng.Next(-16, 16) * 2, 1)));
                    break;
                default: // push esp / pop esp (then keep the popped value and put ESP back into the stack page)
                    if (b.Chance(50)) { b.Emit(Instruction.Create(Op("Push", $"r{s}"), R(Reg.ESP, size))); break; }
                    b.Emit(Instruction.Create(Op("Pop", $"r{s}"), R(Reg.ESP, size)));
                    b.Emit(Instruction.Create(Code.Mov_r32_rm32, R(b.Reg(), 4), Register.ESP));
                    b.Emit(Instruction.Create(Code.Mov_r32_imm32, Register.ESP, (int)DiffCase.StackTop));
                    break;
            }
        }
    }

    public static void Branch(CaseBuilder b)
    {
        switch (b.Rng.Next(6))
        {
            case 0: case 1: // jcc after a compare or with random flags, taken or not
            {
                b.Asm.PreferShortBranch = b.Chance(50);
                if (b.Chance(60)) TwoOperand(b, "Cmp", 0);
                var skip = b.Asm.CreateLabel();
                b.Jcc(b.Rng.Next(16), skip);
                b.Emit(Instruction.Create(Code.Mov_rm32_imm32, new MemoryOperand(Register.None, (long)(DiffCase.DataBase + SinkOffset), 4), 0x11223344));
                b.Asm.Label(ref skip);
                b.Emit(Code.Nopd);
                break;
            }
            case 2: // loop / loope / loopne (ECX or CX), guarded by jecxz / jcxz
            {
                bool cx = b.Chance(25);
                b.Fix(1);
                uint count = (uint)b.Rng.Next(0, 7);
                b.Regs[1] = cx ? (b.Value(4) & 0xFFFF0000) | count : count;
                int acc = b.Reg();
                var top = b.Asm.CreateLabel();
                var end = b.Asm.CreateLabel();
                b.Emit(Instruction.CreateBranch(cx ? Code.Jcxz_rel8_32 : Code.Jecxz_rel8_32, end.Id));
                b.Asm.Label(ref top);
                b.Emit(Instruction.Create(Code.Add_rm32_imm8, R(acc, 4), b.Rng.Next(-3, 4)));
                string kind = b.Pick("Loop", "Loope", "Loopne");
                b.Emit(Instruction.CreateBranch(Op(kind, cx ? "rel8_32_CX" : "rel8_32_ECX"), top.Id));
                b.Asm.Label(ref end);
                b.Emit(Code.Nopd);
                b.FlagsWritten(Fl.Arith, 0);
                break;
            }
            case 3: // call rel32 / ret and ret imm16
            {
                var f = b.Asm.CreateLabel();
                var end = b.Asm.CreateLabel();
                int args = b.Rng.Next(0, 3);
                for (int i = 0; i < args; i++) b.Emit(Instruction.Create(Code.Pushd_imm8, i));
                b.Asm.call(f);
                b.Asm.jmp(end);
                b.Asm.Label(ref f);
                int r = b.Reg();
                b.Emit(Instruction.Create(Code.Mov_r32_rm32, R(r, 4), new MemoryOperand(Register.ESP, 4 * args, 1)));
                if (args > 0 && b.Chance(70)) b.Emit(Instruction.Create(Code.Retnd_imm16, 4 * args));
                else b.Emit(Code.Retnd);
                b.Asm.Label(ref end);
                b.Emit(Code.Nopd);
                break;
            }
            default: // indirect jmp/call through a register or memory, laid out by hand so targets are known
            {
                int r = b.Reg();
                var code = new List<byte>();
                int kind = b.Rng.Next(3);
                // mov r, imm32 (5) ; jmp r | call r (2) ; [call: jmp +1 (2)] ; int3 ; target: nop
                uint target = DiffCase.CodeBase + 5 + 2 + (kind == 1 ? 2u : 0u) + 1;
                if (kind == 2)
                {
                    // jmp dword [disp32] (6 bytes); target stored in the data page
                    int off = b.MemOffset(4) & ~3;
                    target = DiffCase.CodeBase + 6 + 1;
                    b.Poke(off, target, 4);
                    code.AddRange([0xFF, 0x25]);
                    code.AddRange(BitConverter.GetBytes(DiffCase.DataBase + (uint)off));
                    code.Add(0xCC);
                    code.Add(0x90);
                }
                else
                {
                    code.Add((byte)(0xB8 + r));
                    code.AddRange(BitConverter.GetBytes(target));
                    code.AddRange([0xFF, (byte)((kind == 1 ? 0xD0 : 0xE0) + r)]);
                    if (kind == 1) code.AddRange([0xEB, 0x02]); // after the call returns, skip the int3 and the ret
                    code.Add(0xCC);
                    if (kind == 1) code.Add(0xC3); else code.Add(0x90);
                }
                b.Asm.db(code.ToArray());
                break;
            }
        }
    }

    public static void FlagOps(CaseBuilder b)
    {
        if (b.Chance(50)) TwoOperand(b, b.Pick(ArithOps), 0);
        int n = b.Rng.Next(1, 4);
        for (int i = 0; i < n; i++)
        {
            b.Emit(b.Pick(Code.Clc, Code.Stc, Code.Cmc, Code.Cld, Code.Std));
            if (b.Chance(40)) b.FlagConsumer();
        }
    }

    public static void Faults(CaseBuilder b)
    {
        if (b.Chance(50)) TwoOperand(b, b.Pick(ArithOps), 0);
        switch (b.Rng.Next(5))
        {
            case 0: b.Emit(Code.Ud2); break;
            case 1: // read from an unmapped page
                b.Emit(Instruction.Create(Code.Mov_r32_rm32, R(b.Reg(), 4), new MemoryOperand(Register.None, 0x3000_0000 + b.Rng.Next(0, 0x10000), 4)));
                break;
            case 2: // write straddling the end of the data area into an unmapped page
            {
                int size = b.Pick(2, 4);
                b.Emit(Instruction.Create(Op("Mov", $"rm{S(size)}_r{S(size)}"), new MemoryOperand(Register.None, (long)(DiffCase.DataBase + DiffCase.DataSize - 1), 4), R(b.RegWithValue(size, out _), size)));
                break;
            }
            case 3: // jump to an unmapped page: fetch fault
            {
                int r = b.Reg();
                b.Emit(Instruction.Create(Code.Mov_r32_imm32, R(r, 4), 0x4000_0000 + b.Rng.Next(0, 0x1000)));
                b.Emit(Instruction.Create(Code.Jmp_rm32, R(r, 4)));
                break;
            }
            default: // an instruction that runs off the code page's mapped end is not generated; use a stray near jump instead
                b.Asm.db([0xE9, 0x00, 0x10, 0x00, 0x00]); // jmp +0x1000: next page (unmapped)
                break;
        }
    }

    /// <summary>Stores into the immediate of a later instruction of the same block, then runs it (SDM vol. 3 §11.6).</summary>
    public static void SelfModifying(CaseBuilder b)
    {
        int r = b.Reg();
        int pad = b.Rng.Next(0, 4);
        int storeLen = 7; // mov byte [disp32], imm8: C6 05 disp32 imm8
        int target = storeLen + pad + 1 + b.Rng.Next(0, 4); // a byte of the imm32 of "mov r, imm32"
        var code = new List<byte> { 0xC6, 0x05 };
        code.AddRange(BitConverter.GetBytes(DiffCase.CodeBase + (uint)target));
        code.Add((byte)b.Rng.Next(256));
        for (int i = 0; i < pad; i++) code.Add(0x90);
        code.Add((byte)(0xB8 + r));
        code.AddRange(BitConverter.GetBytes(b.Value(4)));
        b.Asm.db(code.ToArray());
    }
}
