using Iced.Intel;
using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Tests.Xen;
using Xunit.Abstractions;
using static Replayvisor.Engine.Tests.Hostile.HostileGuest;
using static Replayvisor.Engine.Tests.Xen.XenTestGuest;

namespace Replayvisor.Engine.Tests.Hostile;

/// <summary>
/// Random valid instructions from Iced's encoder, weighted toward the privileged and system ones a
/// PV kernel must not get away with, at ring 1 and at ring 3. A fault goes to a handler that
/// usually resumes at another instruction boundary, so the whole sequence gets exercised.
/// </summary>
public class RandomInstructionTests(ITestOutputHelper output)
{
    private static readonly Register[] Gprs = [Register.EAX, Register.ECX, Register.EDX, Register.EBX, Register.ESP, Register.EBP, Register.ESI, Register.EDI];
    private static readonly Register[] Sregs = [Register.ES, Register.CS, Register.SS, Register.DS, Register.FS, Register.GS];
    private static Register Gpr(Random r) => r.Next(6) == 0 ? Gprs[r.Next(8)] : Gprs[r.Next(4)];

    private static MemoryOperand Mem(Random r, BuiltDomain d)
    {
        if (r.Next(4) == 0)
            return new MemoryOperand(Gprs[r.Next(8)], (long)(int)(r.Next(3) == 0 ? R32(r) : (uint)r.Next(-64, 64)), 4);
        var m = new MemoryOperand(Register.None, (long)Address(r, d), 4);
        if (r.Next(8) == 0) m = new MemoryOperand(Register.None, Register.None, 1, (long)Address(r, d), 4, false, Sregs[r.Next(6)]);
        return m;
    }

    /// <summary>One to a few instructions (a random pick of families).</summary>
    private static List<Instruction> Pick(Random r, BuiltDomain d, uint at, bool user)
    {
        var l = new List<Instruction>();
        uint imm = R32(r);
        switch (r.Next(30))
        {
            case 0: l.Add(Instruction.Create(r.Next(2) == 0 ? Code.Mov_cr_r32 : Code.Mov_r32_cr, Register.CR0 + r.Next(5), Gpr(r))); if (l[0].Code == Code.Mov_r32_cr) l[0] = Instruction.Create(Code.Mov_r32_cr, Gpr(r), Register.CR0 + r.Next(5)); break;
            case 1: l.Add(r.Next(2) == 0 ? Instruction.Create(Code.Mov_dr_r32, Register.DR0 + r.Next(8), Gpr(r)) : Instruction.Create(Code.Mov_r32_dr, Gpr(r), Register.DR0 + r.Next(8))); break;
            case 2:
                {
                    Code[] c = [Code.Lgdt_m1632, Code.Lidt_m1632, Code.Sgdt_m1632, Code.Sidt_m1632, Code.Invlpg_m, Code.Lldt_rm16, Code.Ltr_rm16, Code.Sldt_rm16, Code.Str_rm16, Code.Lmsw_rm16, Code.Smsw_rm16, Code.Verr_rm16, Code.Verw_rm16];
                    l.Add(Instruction.Create(c[r.Next(c.Length)], Mem(r, d)));
                    break;
                }
            case 3:
                {
                    Code[] c = [Code.Lldt_rm16, Code.Ltr_rm16, Code.Lmsw_rm16, Code.Verr_rm16, Code.Verw_rm16];
                    l.Add(Instruction.Create(Code.Mov_r32_imm32, Register.EAX, Selector(r)));
                    l.Add(Instruction.Create(c[r.Next(c.Length)], Register.AX));
                    break;
                }
            case 4:
                {
                    Code[] c = [Code.In_AL_imm8, Code.In_EAX_imm8, Code.Out_imm8_AL, Code.Out_imm8_EAX];
                    var code = c[r.Next(4)];
                    l.Add(code is Code.In_AL_imm8 or Code.In_EAX_imm8 ? Instruction.Create(code, code == Code.In_AL_imm8 ? Register.AL : Register.EAX, r.Next(256))
                        : Instruction.Create(code, r.Next(256), code == Code.Out_imm8_AL ? Register.AL : Register.EAX));
                    break;
                }
            case 5:
                l.Add(Instruction.Create(Code.Mov_r32_imm32, Register.EDX, r.Next(2) == 0 ? 0x61 : r.Next(0x10000)));
                l.Add(r.Next(4) switch
                {
                    0 => Instruction.Create(Code.In_AL_DX, Register.AL, Register.DX),
                    1 => Instruction.Create(Code.Out_DX_AL, Register.DX, Register.AL),
                    2 => Instruction.CreateInsb(32),
                    _ => Instruction.CreateOutsb(32),
                });
                break;
            case 6:
                {
                    Code[] c = [Code.Cli, Code.Sti, Code.Hlt, Code.Int3, Code.Into, Code.Iretd, Code.Ud2, Code.Cpuid, Code.Rdtsc, Code.Rdmsr, Code.Wrmsr,
                        Code.Wbinvd, Code.Invd, Code.Clts, Code.Pushfd, Code.Popfd, Code.Sysenter, Code.Sysexitd, Code.Rdpmc, Code.Pushad, Code.Popad, Code.Lahf, Code.Sahf, Code.Cld, Code.Std, Code.Leaved, Code.Retnd, Code.Retfd];
                    l.Add(Instruction.Create(c[r.Next(c.Length)]));
                    break;
                }
            case 7: l.Add(Instruction.Create(Code.Int_imm8, r.Next(3) == 0 ? 0x82 : r.Next(256))); break;
            case 8:
                // iret with a random (or nearly valid) frame
                for (int i = 0; i < 5; i++)
                {
                    uint v = i switch
                    {
                        0 => r.Next(3) == 0 ? R32(r) : (uint)(user ? UserStack + 0x700 : KernelStackTop - 0x300),
                        1 => r.Next(2) == 0 ? 0x202u : R32(r),
                        3 => r.Next(3) == 0 ? R32(r) : 0x202u | (uint)(r.Next(4) << 12) | (uint)(r.Next(2) << 17),
                        4 => r.Next(2) == 0 ? at + (uint)r.Next(0x400) : Address(r, d),
                        _ => Selector(r),
                    };
                    l.Add(Instruction.Create(Code.Pushd_imm32, (int)v));
                }
                l.Add(Instruction.Create(Code.Iretd));
                break;
            case 9: l.Add(Instruction.CreateBranch(r.Next(2) == 0 ? Code.Jmp_ptr1632 : Code.Call_ptr1632, Selector(r), r.Next(2) == 0 ? Address(r, d) : at + 16)); break;
            case 10:
                {
                    Code[] c = [Code.Popd_DS, Code.Popd_ES, Code.Popd_SS, Code.Popd_FS, Code.Popd_GS];
                    l.Add(Instruction.Create(Code.Pushd_imm32, Selector(r)));
                    l.Add(Instruction.Create(c[r.Next(5)]));
                    break;
                }
            case 11:
                l.Add(Instruction.Create(Code.Mov_r32_imm32, Register.EAX, Selector(r)));
                l.Add(Instruction.Create(Code.Mov_Sreg_r32m16, Sregs[r.Next(6)], Register.EAX));
                break;
            case 12:
                {
                    Code[] c = [Code.Lds_r32_m1632, Code.Les_r32_m1632, Code.Lss_r32_m1632, Code.Lfs_r32_m1632, Code.Lgs_r32_m1632];
                    l.Add(Instruction.Create(c[r.Next(5)], Gpr(r), Mem(r, d)));
                    break;
                }
            case 13:
                {
                    byte[][] raw = [[0x0F, 0x05], [0x0F, 0x07], [0x0F, 0x34], [0x0F, 0x35], [0xF1], [0x0F, 0x0B], [0xCD, 0x82], [0x0F, 0x01, 0xF8], [0x0F, 0xAA], [0xD6], [0x0F, 0x37], [0x8E, 0xC8]];
                    var b = raw[r.Next(raw.Length)];
                    var ins = Instruction.CreateDeclareByte(b);
                    l.Add(ins);
                    break;
                }
            case 14:
                {
                    Code[] c = [Code.Fld1, Code.Fldz, Code.Fldpi, Code.Fsqrt, Code.Fsin, Code.Fcos, Code.Fptan, Code.Fpatan, Code.Fprem, Code.Frndint, Code.Fscale, Code.F2xm1, Code.Fyl2x,
                        Code.Fninit, Code.Fnclex, Code.Fabs, Code.Fchs, Code.Fxam, Code.Ftst, Code.Fdecstp, Code.Fincstp, Code.Wait];
                    l.Add(Instruction.Create(c[r.Next(c.Length)]));
                    break;
                }
            case 15:
                {
                    Code[] c = [Code.Fadd_st0_sti, Code.Fmul_st0_sti, Code.Fdiv_st0_sti, Code.Fdivr_st0_sti, Code.Fsub_st0_sti, Code.Fxch_st0_sti, Code.Fcomi_st0_sti, Code.Fucomip_st0_sti];
                    l.Add(Instruction.Create(c[r.Next(c.Length)], Register.ST0, Register.ST0 + r.Next(8)));
                    break;
                }
            case 16:
                {
                    Code[] c = [Code.Fld_m32fp, Code.Fld_m64fp, Code.Fld_m80fp, Code.Fild_m32int, Code.Fistp_m32int, Code.Fstp_m64fp, Code.Fstp_m80fp, Code.Fldcw_m2byte, Code.Fnstcw_m2byte,
                        Code.Fnstsw_m2byte, Code.Fldenv_m14byte, Code.Fnstenv_m14byte, Code.Frstor_m94byte, Code.Fnsave_m94byte, Code.Fbld_m80bcd, Code.Fbstp_m80bcd, Code.Fxsave_m512byte, Code.Fxrstor_m512byte];
                    l.Add(Instruction.Create(c[r.Next(c.Length)], Mem(r, d)));
                    break;
                }
            case 17:
                {
                    Code[] c = [Code.Div_rm32, Code.Idiv_rm32, Code.Mul_rm32, Code.Imul_rm32, Code.Neg_rm32, Code.Not_rm32, Code.Inc_rm32, Code.Dec_rm32];
                    l.Add(Instruction.Create(c[r.Next(c.Length)], r.Next(2) == 0 ? Gpr(r) : Register.ECX));
                    break;
                }
            case 18:
                {
                    Code[] c = [Code.Add_r32_rm32, Code.Sub_r32_rm32, Code.Xor_r32_rm32, Code.Adc_r32_rm32, Code.Bsf_r32_rm32, Code.Bsr_r32_rm32, Code.Imul_r32_rm32, Code.Cmp_r32_rm32, Code.Xchg_rm32_r32, Code.Bt_rm32_r32, Code.Bound_r32_m3232, Code.Lar_r32_r32m16, Code.Lsl_r32_r32m16];
                    var code = c[r.Next(c.Length)];
                    l.Add(code == Code.Xchg_rm32_r32 || code == Code.Bt_rm32_r32 ? Instruction.Create(code, Mem(r, d), Gpr(r))
                        : code == Code.Bound_r32_m3232 || r.Next(2) == 0 ? Instruction.Create(code, Gpr(r), Mem(r, d)) : Instruction.Create(code, Gpr(r), Gprs[r.Next(8)]));
                    break;
                }
            case 19: l.Add(Instruction.Create(Code.Mov_r32_imm32, Gpr(r), r.Next(2) == 0 ? (int)Address(r, d) : r.Next(16))); break;
            case 20: l.Add(Instruction.Create(Code.Mov_rm32_r32, Mem(r, d), Gpr(r))); break;
            case 21: l.Add(Instruction.Create(Code.Mov_r32_rm32, Gpr(r), Mem(r, d))); break;
            case 22:
                l.Add(Instruction.Create(Code.Mov_r32_imm32, Register.ECX, r.Next(3) == 0 ? (int)R32(r) : r.Next(64)));
                l.Add(Instruction.Create(Code.Mov_r32_imm32, r.Next(2) == 0 ? Register.EDI : Register.ESI, (int)Address(r, d)));
                l.Add(r.Next(3) switch { 0 => Instruction.CreateRepStosd(32), 1 => Instruction.CreateRepMovsd(32), _ => Instruction.CreateRepeCmpsb(32) });
                break;
            case 23 when r.Next(4) == 0: l.Add(Instruction.Create(Code.Mov_r32_imm32, Register.ESP, r.Next(2) == 0 ? (int)Address(r, d) : (int)(KernelStackTop - (uint)r.Next(0x1000)))); break;
            case 24: l.Add(Instruction.CreateBranch(r.Next(2) == 0 ? Code.Jmp_rel32_32 : Code.Call_rel32_32, r.Next(3) == 0 ? Address(r, d) : at + (uint)r.Next(-0x200, 0x200))); break;
            case 25: l.Add(Instruction.CreateBranch(Code.Jne_rel32_32 + 2 * r.Next(8) - 2 * r.Next(2), at + (uint)r.Next(-0x100, 0x100))); break;
            case 26: { var c8 = Instruction.Create(Code.Cmpxchg8b_m64, Mem(r, d)); c8.HasLockPrefix = r.Next(2) == 0; l.Add(c8); break; }
            case 27: l.Add(Instruction.Create(Code.Enterd_imm16_imm8, r.Next(0x10000), r.Next(40))); break;
            case 28:
                l.Add(Instruction.Create(Code.Mov_r32_imm32, Register.EAX, r.Next(3) == 0 ? (int)R32(r) : r.Next(40)));
                l.Add(Instruction.Create(Code.Mov_r32_imm32, Register.EBX, (int)Address(r, d)));
                l.Add(Instruction.Create(Code.Int_imm8, 0x82));
                break;
            default:
                {
                    Code[] c = [Code.Movaps_xmm_xmmm128, Code.Paddb_mm_mmm64, Code.Emms, Code.Pause, Code.Lfence, Code.Mfence, Code.Prefetcht0_m8, Code.Clflush_m8, Code.Movnti_m32_r32, Code.Rdrand_r32, Code.Xgetbv, Code.Monitord, Code.Mwait];
                    var code = c[r.Next(c.Length)];
                    l.Add(code switch
                    {
                        Code.Movaps_xmm_xmmm128 => Instruction.Create(code, Register.XMM0 + r.Next(8), Mem(r, d)),
                        Code.Paddb_mm_mmm64 => Instruction.Create(code, Register.MM0 + r.Next(8), Register.MM0 + r.Next(8)),
                        Code.Prefetcht0_m8 or Code.Clflush_m8 => Instruction.Create(code, Mem(r, d)),
                        Code.Movnti_m32_r32 => Instruction.Create(code, Mem(r, d), Gpr(r)),
                        Code.Rdrand_r32 => Instruction.Create(code, Gpr(r)),
                        _ => Instruction.Create(code),
                    });
                    break;
                }
        }
        return l;
    }

    private sealed class Bytes : CodeWriter
    {
        public readonly List<byte> List = [];
        public override void WriteByte(byte value) => List.Add(value);
    }

    /// <summary>Encodes random instructions one at a time from <paramref name="start"/> up to <paramref name="end"/>; returns the bytes and the instruction starts.</summary>
    internal static (byte[] Code, List<uint> Starts) Generate(Random r, BuiltDomain d, uint start, uint end, bool user)
    {
        var w = new Bytes();
        var starts = new List<uint>();
        uint at = start;
        while (true)
        {
            var before = w.List.Count;
            var group = Pick(r, d, at, user);
            var enc = Encoder.Create(32, w);
            uint cur = at;
            bool ok = true;
            foreach (var ins in group)
            {
                var i = ins;
                i.IP = cur;
                if (!enc.TryEncode(i, cur, out uint len, out _)) { ok = false; break; }
                if (cur + len > end - 8) { ok = false; break; }
                cur += len;
            }
            if (!ok)
            {
                w.List.RemoveRange(before, w.List.Count - before);
                if (at + 24 > end) break;
                continue;
            }
            starts.Add(at);
            at = cur;
        }
        return (w.List.ToArray(), starts);
    }

    private static BuiltDomain Stub(bool pae) => new XenTestGuest().Main(a => a.nop()).Machine(pae).Domain;
    private static readonly Lazy<BuiltDomain> PaeStub = new(() => Stub(true));

    internal static HostileCase Case(int seed, bool user)
    {
        var r = new Random(seed);
        var g = new XenTestGuest();
        RandomTrapTable(g, r);
        r.NextBytes(g.Data.AsSpan(2056));
        for (int k = 0; k < HandlerCount; k++)
            if (r.Next(3) == 0) Handler(g, r, HandlerAt(k), user);
            else g.Code(HandlerAt(k), a => Resume(a, user));
        var d = PaeStub.Value;
        uint begin = user ? UserCode : CodeStart, end = user ? UserCode + 0x1000 : CodeEnd;
        var (code, starts) = Generate(r, d, begin, end, user);
        if (user)
        {
            g.Main(a =>
            {
                Start(a, r, Entry + 0xF0);
            });
            g.Code(Entry + 0xF0, a => Resume(a, true));
        }
        else
        {
            g.Main(a => Start(a, r, CodeStart));
            g.Code(CodeStart, a => a.db(code));
        }
        var image = g.BuildImage(true);
        return new HostileCase($"random-instructions seed {seed} user {user}", image, m =>
        {
            if (user)
            {
                Write(m, UserCode, code);
                MakeUser(m, UserCode);
                MakeUser(m, UserStack);
            }
            WriteResumeTable(m, starts, seed);
        }, 80_000);
    }

    [Fact]
    public void RandomInstructionsAtRing1EndNormallyAndReproducibly()
    {
        var kinds = new Dictionary<MachineExitKind, int>();
        int n = HostileRun.Iterations(20);
        for (int i = 0; i < n; i++)
        {
            var o = HostileRun.Check(Case(3000 + i, user: false), alsoWithoutBlockCache: i % 5 == 0);
            kinds[o.Exit.Kind] = kinds.GetValueOrDefault(o.Exit.Kind) + 1;
            output.WriteLine($"{i}: {o.Exit} hypercalls {o.Hypercalls}");
        }
    }

    [Fact]
    public void RandomInstructionsAtRing3EndNormallyAndReproducibly()
    {
        int n = HostileRun.Iterations(20);
        for (int i = 0; i < n; i++)
        {
            var o = HostileRun.Check(Case(4000 + i, user: true), alsoWithoutBlockCache: i % 5 == 0);
            output.WriteLine($"{i}: {o.Exit} hypercalls {o.Hypercalls}");
        }
    }
}
