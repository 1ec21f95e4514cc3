namespace Replayvisor.Engine.Tests.Differential;

/// <summary>
/// Every P6 integer instruction family with its generator and CI case count. Adding a family is
/// adding a line here and a generator in Gen*.cs.
/// </summary>
public static class Families
{
    public static readonly Family[] All =
    [
        new("datamove", 2000, Gen.DataMove),     // mov movzx movsx xchg lea cmovcc setcc
        new("alu", 3000, Gen.Alu),               // add adc sub sbb cmp inc dec neg
        new("logic", 2000, Gen.Logic),           // and or xor test not
        new("stack", 1500, Gen.Stack),           // push pop (reg, mem, imm, esp forms)
        new("branch", 1500, Gen.Branch),         // jcc jmp call ret loop loope loopne jcxz jecxz
        new("flagops", 800, Gen.FlagOps),        // clc stc cmc cld std
        new("faults", 400, Gen.Faults),          // #UD, #PF on data and fetch
        new("selfmod", 400, Gen.SelfModifying),  // stores into instructions about to run
        new("muldiv", 2500, Gen.MulDiv),         // mul imul(1,2,3 operands) div idiv, #DE
        new("bcd", 1000, Gen.Bcd),               // daa das aaa aas aam aad
        new("shift", 3000, Gen.Shift),           // shl sal shr sar rol ror rcl rcr shld shrd
        new("bitops", 2000, Gen.BitOps),         // bt bts btr btc bsf bsr
        new("string", 2000, Gen.String),         // movs cmps scas lods stos with rep/repe/repne
        new("atomic", 1500, Gen.Atomic),         // cmpxchg cmpxchg8b xadd bswap
        new("enterleave", 600, Gen.EnterLeave),
        new("pushapopa", 400, Gen.PushaPopa),
        new("pushfpopf", 600, Gen.PushfPopf),
        new("lahfsahf", 400, Gen.LahfSahf),
        new("convert", 400, Gen.Convert),        // cbw cwde cwd cdq
        new("xlat", 300, Gen.Xlat),
        new("bound", 400, Gen.Bound),
        new("cpuid", 50, Gen.Cpuid),
        new("rdtsc", 50, Gen.Rdtsc),
        new("int3", 100, Gen.Int3),              // int3 and into
        new("crosspage", 1200, Gen.CrossPage),   // stores, pushes, string ops crossing into an unmapped or read-only page
        new("segments", 1200, Gen.Segments),     // DS/ES/FS/GS loads through the LDT and GDT, limits, lar/lsl/verr/verw
        new("privileged", 300, Gen.Privileged),  // ring-3 #GP for privileged instructions, SS loads (ring 3 only)
    ];

    public static Family Get(string name) => Array.Find(All, f => f.Name == name)
        ?? throw new ArgumentException("no differential family " + name);

    public static IEnumerable<object[]> Names => All.Select(f => new object[] { f.Name });
}
