using Iced.Intel;
using Replayvisor.Engine.Cpu;
using static Replayvisor.Engine.Tests.Differential.CaseBuilder;

namespace Replayvisor.Engine.Tests.Differential;

/// <summary>
/// Generators whose cases mostly end in a fault, compared in full (registers, flags, selectors,
/// data area, vector, error code, CR2): accesses crossing into a faulting page, segment loads and
/// limit checks through the LDT that diffrunner.c installs, and privileged instructions at ring 3.
/// </summary>
public static partial class Gen
{
    private const uint Below = DiffCase.DataBase, Above = DiffCase.GuardBase;

    /// <summary>
    /// Stores, read-modify-writes, reads, pushes, calls, pusha, enter and string operations whose
    /// access crosses from the data area into the page above (unmapped or read-only, per case) or
    /// into the never-mapped page below, or lies just inside or wholly past the edge. A store that
    /// faults on its second page must leave the first page unwritten (SDM vol. 3 §6.5: a fault is
    /// reported before the instruction changes any state).
    /// </summary>
    public static void CrossPage(CaseBuilder b)
    {
        b.Guard = b.Chance(50) ? GuardPage.ReadOnly : GuardPage.Unmapped;
        switch (b.Rng.Next(4))
        {
            case 0: CrossAccess(b); break;
            case 1: CrossPush(b); break;
            default: CrossString(b); break;
        }
    }

    /// <summary>An address for an access of size bytes near an edge: crossing it (most often), just inside, or past it.</summary>
    private static uint EdgeAddress(CaseBuilder b, int size, out bool up)
    {
        up = b.Chance(75);
        int k = b.Chance(70) ? b.Rng.Next(1, size) : b.Rng.Next(-2, size + 3); // bytes on the far side of the edge
        if (size == 1 && k == 1 && b.Chance(50)) k = 0;
        return up ? Above - (uint)(size - k) : Below - (uint)k;
    }

    private static void CrossAccess(CaseBuilder b)
    {
        int size = b.Pick(2, 4, 4, 1);
        string s = S(size);
        uint addr = EdgeAddress(b, size, out _);
        int a = b.FreshReg();
        MemoryOperand m;
        if (a < 0) m = new MemoryOperand(Register.None, (long)addr, 4);
        else { b.Regs[a] = addr - 8; m = new MemoryOperand(R(a, 4), 8, 1); }
        int r = b.RegWithValue(size, out _);
        switch (b.Rng.Next(9))
        {
            case 0: case 1: b.Emit(Instruction.Create(Op("Mov", $"rm{s}_r{s}"), m, R(r, size))); break;
            case 2: b.Emit(Instruction.Create(Op("Mov", $"r{s}_rm{s}"), R(r, size), m)); break;
            case 3: b.Emit(Instruction.Create(Op(b.Pick("Add", "Sub", "Xor", "Adc"), $"rm{s}_r{s}"), m, R(r, size))); b.FlagsWritten(Fl.Arith, 0); break;
            case 4: b.Emit(Instruction.Create(Op(b.Pick("Inc", "Dec", "Not", "Neg"), $"rm{s}"), m)); b.FlagsWritten(Fl.Arith, 0); break;
            case 5: b.Emit(Instruction.Create(Op("Xchg", $"rm{s}_r{s}"), m, R(r, size))); break;
            case 6: b.Emit(Instruction.Create(Op("Xadd", $"rm{s}_r{s}"), m, R(r, size))); b.FlagsWritten(Fl.Arith, 0); break;
            case 7:
                b.Fix(0);
                b.Emit(Instruction.Create(Op("Cmpxchg", $"rm{s}_r{s}"), m, R(r == 0 ? 3 : r, size)));
                b.FlagsWritten(Fl.Arith, 0);
                break;
            default: b.Emit(Instruction.Create(Op("Shl", $"rm{s}_1"), m, 1)); b.FlagsWritten(Fl.Arith, SdmUndefined.Flags(Mnemonic.Shl, size, 1)); break;
        }
    }

    private static void CrossPush(CaseBuilder b)
    {
        // ESP a few bytes above an edge, so the pushed bytes straddle it (or land wholly past it).
        bool up = b.Chance(60);
        int k = b.Rng.Next(1, 6);
        b.Regs[Reg.ESP] = up ? Above + (uint)k : Below + (uint)k;
        switch (b.Rng.Next(6))
        {
            case 0: b.Emit(Instruction.Create(Code.Push_r32, R(b.RegWithValue(4, out _), 4))); break;
            case 1: b.Emit(Instruction.Create(Code.Push_r16, R(b.RegWithValue(2, out _), 2))); break;
            case 2: b.Emit(Instruction.Create(Code.Pushd_imm32, (int)b.Value(4))); break;
            case 3: // call pushes its return address
            {
                var f = b.Asm.CreateLabel();
                b.Asm.call(f);
                b.Asm.Label(ref f);
                b.Emit(Code.Nopd);
                break;
            }
            case 4: // pusha: 32 bytes, so start a little further up
            {
                uint esp = (up ? Above : Below) + (uint)b.Rng.Next(1, 32);
                b.Regs[Reg.ESP] = esp;
                bool d = b.Chance(70);
                b.Emit(d ? Code.Pushad : Code.Pushaw);
                // SDM vol. 2 PUSHA does not say whether the pushes before a faulting one reach
                // memory. The host's do; the emulator checks the whole frame first and writes none.
                int frame = d ? 32 : 16;
                int lo = (int)(esp - DiffCase.DataBase) - frame;
                b.DataUndefinedOnFault(Math.Max(lo, 0), Math.Min((int)(esp - DiffCase.DataBase), DiffCase.DataSize) - Math.Max(lo, 0));
                break;
            }
            default: // push from memory: a read, then a store that may fault
                b.Emit(Instruction.Create(Code.Push_rm32, b.MemWithValue(4, out _, out _)));
                break;
        }
    }

    private static void CrossString(CaseBuilder b)
    {
        int size = b.Size();
        for (int r = 0; r < 8; r++) if (r is 0 or 1 or 6 or 7) b.Fix(r);
        string kind = b.Pick("movs", "stos", "stos", "lods", "cmps", "scas");
        bool rep = kind != "lods" || b.Chance(30) ? b.Chance(85) : false;
        // Going up towards the page above, or down towards the page below (DF=1).
        bool up = b.Chance(60);
        b.Eflags = up ? b.Eflags & ~Fl.DF : b.Eflags | Fl.DF;
        int count = b.Rng.Next(1, 12);
        int skew = b.Rng.Next(0, size); // a misaligned start makes the last element straddle the edge
        uint edgeAddr = up ? Above - (uint)(size * b.Rng.Next(0, count) + size - skew) : Below + (uint)(size * b.Rng.Next(0, count) + skew);
        // The edge is crossed through EDI (stores, scas) or ESI (loads), the other pointer stays in the data page.
        bool viaSource = kind is "lods" || (kind is "movs" or "cmps" && b.Chance(40));
        uint other = DiffCase.DataBase + (uint)b.Rng.Next(0x400, 0xC00);
        b.Regs[6] = viaSource ? edgeAddr : other;
        b.Regs[7] = viaSource ? other : edgeAddr;
        b.Regs[1] = rep ? (uint)count : b.Value(4);
        RepPrefixKind rk = !rep ? RepPrefixKind.None : kind is "cmps" or "scas" ? b.Pick(RepPrefixKind.Repe, RepPrefixKind.Repne) : RepPrefixKind.Repe;
        Instruction insn = (kind, size) switch
        {
            ("movs", 1) => Instruction.CreateMovsb(32, Register.None, rk),
            ("movs", 2) => Instruction.CreateMovsw(32, Register.None, rk),
            ("movs", _) => Instruction.CreateMovsd(32, Register.None, rk),
            ("cmps", 1) => Instruction.CreateCmpsb(32, Register.None, rk),
            ("cmps", 2) => Instruction.CreateCmpsw(32, Register.None, rk),
            ("cmps", _) => Instruction.CreateCmpsd(32, Register.None, rk),
            ("scas", 1) => Instruction.CreateScasb(32, rk),
            ("scas", 2) => Instruction.CreateScasw(32, rk),
            ("scas", _) => Instruction.CreateScasd(32, rk),
            ("lods", 1) => Instruction.CreateLodsb(32, Register.None, rk),
            ("lods", 2) => Instruction.CreateLodsw(32, Register.None, rk),
            ("lods", _) => Instruction.CreateLodsd(32, Register.None, rk),
            ("stos", 1) => Instruction.CreateStosb(32, rk),
            ("stos", 2) => Instruction.CreateStosw(32, rk),
            _ => Instruction.CreateStosd(32, rk),
        };
        b.Emit(insn);
        if (kind is "cmps" or "scas") b.FlagsWritten(Fl.Arith, 0);
    }

    /// <summary>Selectors a snippet may load: LDT entries (diffrunner.c's ldt_entries), one past the LDT, GDT entries and null ones.</summary>
    private static readonly ushort[] DataSelectors =
    [
        0x07, 0x0F, 0x17, 0x1F, 0x27, 0x2F, 0x37, 0x3F, 0x04, 0x06,  // LDT (0x3f is past its limit; 0x04, 0x06 with RPL 0 and 2)
        0x00, 0x03,                                                    // null
        0x1B, 0x0B, 0x13, 0x3B, 0x43, 0x83,                            // DPL 0 data/code, empty, TSS, past the GDT limit
        0x23, 0x2B, 0x33,                                              // user code (readable) and data
    ];

    /// <summary>Per selector, offsets near its limit (or an expand-down segment's lower bound).</summary>
    private static uint OffsetNear(CaseBuilder b, ushort sel, int size) => (sel >> 3, (sel & 4) != 0) switch
    {
        (0, true) or (3, true) or (4, true) => 0x1000u - (uint)size + (uint)b.Rng.Next(-2, 4),
        (1, true) or (5, true) => (uint)b.Rng.Next(0, 0x1FF0),
        (2, true) => b.Chance(60) ? 0x1000u - (uint)b.Rng.Next(-2, 4) : 0x1FF0u + (uint)b.Rng.Next(0, 8),
        (6, true) => 0x800u - (uint)size + (uint)b.Rng.Next(-2, 4),
        _ => DiffCase.DataBase + (uint)b.Rng.Next(0, 0x1000),
    };

    private static readonly Register[] DataSegs = [Register.DS, Register.ES, Register.FS, Register.GS];

    /// <summary>
    /// Loads DS/ES/FS/GS (mov, pop, lds/les/lfs/lgs) with valid and invalid selectors, then reads,
    /// writes or runs a string operation through it near its limit; lar/lsl/verr/verw on the same
    /// selectors. Checks of SDM vol. 3 §5.3-5.6 (limits, types, privilege) against the host.
    /// </summary>
    public static void Segments(CaseBuilder b)
    {
        ushort sel = b.Pick(DataSelectors);
        Register seg = b.Pick(DataSegs);
        int size = b.Pick(1, 2, 4);
        string s = S(size);
        int rs = b.FreshReg();
        if (rs < 0) return;
        b.Regs[rs] = (b.Value(4) & 0xFFFF0000) | sel;
        switch (b.Rng.Next(8))
        {
            case 0: // lar / lsl / verr / verw
            {
                if ((sel >> 3) is 8 or 10) sel = 0x2B; // the host's TSS and LDT descriptors differ from ours in base and limit
                b.Regs[rs] = (b.Regs[rs] & 0xFFFF0000) | sel;
                string op = b.Pick("Lar", "Lsl", "Verr", "Verw");
                if (op is "Lar" or "Lsl") b.Emit(Instruction.Create(Op(op, "r32_r32m16"), R(b.Reg(), 4), R(rs, 4)));
                else b.Emit(Instruction.Create(Op(op, "rm16"), R(rs, 2)));
                b.FlagsWritten(Fl.ZF, 0);
                return;
            }
            case 1: // push/pop
                b.Emit(Instruction.Create(Code.Push_r32, R(rs, 4)));
                b.Emit(Instruction.Create(seg switch { Register.DS => Code.Popd_DS, Register.ES => Code.Popd_ES, Register.FS => Code.Popd_FS, _ => Code.Popd_GS }, seg));
                break;
            case 2: // lds/les/lfs/lgs from a far pointer in the data page
            {
                int off = b.Rng.Next(0, 0xF00) & ~1;
                b.Poke(off, b.Value(4), 4);
                b.Poke(off + 4, sel, 2);
                int dst = b.Reg();
                Code c = seg switch { Register.DS => Code.Lds_r32_m1632, Register.ES => Code.Les_r32_m1632, Register.FS => Code.Lfs_r32_m1632, _ => Code.Lgs_r32_m1632 };
                b.Emit(Instruction.Create(c, R(dst, 4), new MemoryOperand(Register.None, (long)(DiffCase.DataBase + (uint)off), 4)));
                break;
            }
            default:
                b.Emit(Instruction.Create(Code.Mov_Sreg_rm16, seg, R(rs, 2)));
                break;
        }
        if (b.Chance(15)) { b.Emit(Instruction.Create(Code.Mov_r32m16_Sreg, R(b.Reg(), 4), seg)); return; }
        // Use the segment.
        uint off2 = OffsetNear(b, sel, size);
        if (seg == Register.ES && b.Chance(30))
        {
            b.Fix(Reg.EDI); b.Fix(0); b.Fix(1);
            b.Regs[Reg.EDI] = off2;
            b.Eflags &= ~Fl.DF;
            b.Regs[1] = (uint)b.Rng.Next(1, 4);
            b.Emit(size switch { 1 => Instruction.CreateStosb(32, RepPrefixKind.Repe), 2 => Instruction.CreateStosw(32, RepPrefixKind.Repe), _ => Instruction.CreateStosd(32, RepPrefixKind.Repe) });
            return;
        }
        int a = b.FreshReg();
        if (a < 0) return;
        b.Regs[a] = off2;
        var m = new MemoryOperand(R(a, 4), Register.None, 1, 0, 0, false, seg);
        int r = b.RegWithValue(size, out _);
        switch (b.Rng.Next(3))
        {
            case 0: b.Emit(Instruction.Create(Op("Mov", $"r{s}_rm{s}"), R(r, size), m)); break;
            case 1: b.Emit(Instruction.Create(Op("Mov", $"rm{s}_r{s}"), m, R(r, size))); break;
            default: b.Emit(Instruction.Create(Op("Add", $"rm{s}_r{s}"), m, R(r, size))); b.FlagsWritten(Fl.Arith, 0); break;
        }
    }

    /// <summary>
    /// Instructions that ring 3 may not execute (CPL &gt; IOPL or CPL &gt; 0): #GP(0) on the host
    /// and in the emulator at ring 3 (SDM vol. 2, each instruction's "Protected Mode Exceptions"),
    /// and SS loads whose checks depend on CPL. Compared at ring 3 only.
    /// </summary>
    public static void Privileged(CaseBuilder b)
    {
        b.Ring3Only = true;
        if (b.Chance(50)) TwoOperand(b, b.Pick(ArithOps), 0);
        switch (b.Rng.Next(17))
        {
            case 0: b.Emit(Code.Cli); break;
            case 1: b.Emit(Code.Sti); break;
            case 2: b.Emit(Code.Hlt); break;
            case 3: b.Emit(Instruction.Create(Code.In_AL_imm8, Register.AL, b.Rng.Next(256))); break;
            case 4: b.Emit(Instruction.Create(Code.Out_DX_EAX, Register.DX, Register.EAX)); break;
            case 5: b.Emit(Instruction.Create(Code.Mov_r32_cr, Register.EAX, Register.CR0)); break;
            case 6: b.Emit(Instruction.Create(Code.Mov_cr_r32, Register.CR3, Register.EAX)); break;
            case 7: b.Emit(Instruction.Create(Code.Lgdt_m1632, new MemoryOperand(Register.None, (long)DiffCase.DataBase, 4))); break;
            case 8: b.Emit(Instruction.Create(Code.Invlpg_m, new MemoryOperand(Register.None, (long)DiffCase.DataBase, 4))); break;
            case 9: b.Emit(Code.Wbinvd); break;
            case 10: b.Emit(Code.Clts); break;
            case 11: b.Emit(Code.Rdmsr); break;
            case 12: b.Emit(Code.Wrmsr); break;
            case 13: b.Emit(Instruction.Create(Code.Lldt_rm16, Register.AX)); break;
            case 14: b.Emit(Instruction.Create(Code.Mov_dr_r32, Register.DR7, Register.EAX)); break;
            default: // SS loads: null, read-only, DPL 0, and the one a ring-3 SS may hold (RPL = DPL = CPL, SDM vol. 2 MOV)
            {
                ushort sel = b.Pick<ushort>(0x00, 0x03, 0x0F, 0x1B, 0x18, 0x27, 0x2B, 0x2A, 0x3F);
                int r = b.FreshReg();
                if (r < 0) { b.Emit(Code.Cli); break; }
                b.Regs[r] = (b.Value(4) & 0xFFFF0000) | sel;
                b.Emit(Instruction.Create(Code.Mov_Sreg_rm16, Register.SS, R(r, 2)));
                break;
            }
        }
    }
}
