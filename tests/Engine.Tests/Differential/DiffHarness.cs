using System.Text;
using Iced.Intel;
using Replayvisor.Engine.Cpu;

namespace Replayvisor.Engine.Tests.Differential;

/// <summary>One instruction family: a generator of cases and how many cases CI runs.</summary>
public sealed record Family(string Name, int CiCases, Action<CaseBuilder> Generate);

/// <summary>The counts of one family run.</summary>
public sealed class FamilyResult
{
    public string Family = "";
    public int Seed;
    public int Cases, Passed, Mismatches, Exceptions;
    /// <summary>Passed cases whose full state (registers, defined flags, selectors, data area, and for exceptions the vector, error code, EIP and CR2) was compared at ring 3.</summary>
    public int FullState;
    /// <summary>Passed cases also compared with the host at ring 0 (all but the privilege-dependent ones).</summary>
    public int Ring0Compared;
    public readonly List<string> Failures = new();
    /// <summary>Cases that ended in an exception on the host, by vector (trapno).</summary>
    public readonly SortedDictionary<int, int> ExceptionVectors = new();
    /// <summary>One example per exception vector, for the log.</summary>
    public readonly SortedDictionary<int, string> ExceptionExamples = new();

    public string Summary =>
        $"{Family,-12} seed {Seed,-11} cases {Cases,6}  passed {Passed,6}  mismatches {Mismatches,5}  " +
        $"full state {FullState,6}  ring 0 too {Ring0Compared,6}  (ended in an exception: {Exceptions}" +
        (ExceptionVectors.Count == 0 ? ")" : ": " + string.Join(", ", ExceptionVectors.Select(kv => $"#{kv.Key}x{kv.Value}")) + ")");
}

/// <summary>
/// Runs a family's cases natively and in the emulator (block cache on and off) and compares.
/// </summary>
public static class DiffHarness
{
    /// <summary>Default base seed; REPLAYVISOR_DIFF_SEED overrides it.</summary>
    public const int DefaultSeed = 0x5EED_2024;

    /// <summary>Multiplier of every family's CI case count (REPLAYVISOR_DIFF_CASES, default 1).</summary>
    public static int Multiplier =>
        int.TryParse(Environment.GetEnvironmentVariable("REPLAYVISOR_DIFF_CASES"), out int m) && m > 0 ? m : 1;

    public static int BaseSeed =>
        int.TryParse(Environment.GetEnvironmentVariable("REPLAYVISOR_DIFF_SEED"), out int s) ? s : DefaultSeed;

    /// <summary>Each family gets its own stable seed (FNV-1a of its name mixed with the base seed).</summary>
    public static int SeedFor(string family)
    {
        uint h = 2166136261;
        foreach (char ch in family) h = (h ^ ch) * 16777619;
        return (int)(h ^ (uint)BaseSeed) & 0x7FFFFFFF;
    }

    private const int MaxReported = 8;

    public static FamilyResult Run(Family f) => Run(f, f.CiCases * Multiplier, SeedFor(f.Name));

    public static FamilyResult Run(Family f, int count, int seed)
    {
        var rng = new Random(seed);
        var compiled = new EmulatorRunner(CpuTier.Compiled, ring: 3);
        var cached = new EmulatorRunner(CpuTier.BlockCache, ring: 3);
        var plain = new EmulatorRunner(CpuTier.Interpreter, ring: 3);
        var ring0 = new EmulatorRunner(CpuTier.Compiled, ring: 0);
        var res = new FamilyResult { Family = f.Name, Seed = seed, Cases = count };
        // Chunks bound memory (each native outcome carries the 8 KiB data area) for large sweeps.
        for (int first = 0; first < count; first += ChunkSize)
        {
            int n = Math.Min(ChunkSize, count - first);
            var cases = new List<DiffCase>(n);
            for (int i = 0; i < n; i++)
            {
                var b = new CaseBuilder(rng);
                f.Generate(b);
                cases.Add(b.Build(f.Name, first + i));
            }
            Outcome[] native = NativeRunner.Run(cases);
            for (int i = 0; i < n; i++) Check(res, cases[i], native[i], compiled, cached, plain, ring0);
        }
        return res;
    }

    private const int ChunkSize = 4000;

    private static void Check(FamilyResult res, DiffCase c, Outcome n, EmulatorRunner compiled, EmulatorRunner cached, EmulatorRunner plain, EmulatorRunner ring0)
    {
        Outcome k = compiled.Run(c), e = cached.Run(c), p = plain.Run(c);
        if (n.End == EndKind.Exception)
        {
            res.Exceptions++;
            res.ExceptionVectors[n.Vector] = res.ExceptionVectors.GetValueOrDefault(n.Vector) + 1;
            if (!res.ExceptionExamples.ContainsKey(n.Vector)) res.ExceptionExamples[n.Vector] = Disassemble(c.Code);
        }
        string? modes = CompareModes(e, p);
        if (modes != null) { Fail(res, c, n, e, "block cache and plain interpreter differ: " + modes); return; }
        modes = CompareModes(k, e);
        if (modes != null) { Fail(res, c, n, k, "compiled tier and block cache differ: " + modes); return; }
        // Every family's handlers are implemented: an unsupported instruction is a failure.
        if (e.End == EndKind.Unsupported) { Fail(res, c, n, e, "unsupported instruction: " + e.Message); return; }
        string? diff = CompareNative(c, n, e, ring: 3);
        if (diff != null) { Fail(res, c, n, e, diff); return; }
        if (!c.Ring3Only)
        {
            Outcome z = ring0.Run(c);
            diff = CompareNative(c, n, z, ring: 0);
            if (diff != null) { Fail(res, c, n, z, "at ring 0: " + diff); return; }
            res.Ring0Compared++;
        }
        res.Passed++;
        res.FullState++;
    }

    private static void Fail(FamilyResult res, DiffCase c, Outcome n, Outcome e, string why)
    {
        res.Mismatches++;
        if (res.Failures.Count < MaxReported) res.Failures.Add(Describe(c, n, e, why));
    }

    /// <summary>Both emulator modes must agree on everything, instruction count included.</summary>
    private static string? CompareModes(Outcome a, Outcome b)
    {
        var sb = new StringBuilder();
        if (a.End != b.End || a.Vector != b.Vector || a.Eip != b.Eip) sb.Append($"end {a.End}/{a.Vector}/{a.Eip:x8} vs {b.End}/{b.Vector}/{b.Eip:x8}; ");
        if (a.ErrorCode != b.ErrorCode || a.Cr2 != b.Cr2) sb.Append($"error/cr2 {a.ErrorCode:x}/{a.Cr2:x8} vs {b.ErrorCode:x}/{b.Cr2:x8}; ");
        for (int s = 0; s < 6; s++) if (a.Sregs[s] != b.Sregs[s]) sb.Append($"{Seg.Names[s]} {a.Sregs[s]:x4} vs {b.Sregs[s]:x4}; ");
        if ((a.Guard == null) != (b.Guard == null) || (a.Guard != null && FirstDiff(a.Guard, b.Guard!) >= 0)) sb.Append("read-only guard page contents differ; ");
        if (a.Icount != b.Icount) sb.Append($"icount {a.Icount} vs {b.Icount}; ");
        for (int r = 0; r < 8; r++) if (a.Regs[r] != b.Regs[r]) sb.Append($"{Reg.Names[r]} {a.Regs[r]:x8} vs {b.Regs[r]:x8}; ");
        if (a.Eflags != b.Eflags) sb.Append($"eflags {a.Eflags:x8} vs {b.Eflags:x8}; ");
        int d = FirstDiff(a.Data, b.Data);
        if (d >= 0) sb.Append($"data at +{d:x4}: {a.Data[d]:x2} vs {b.Data[d]:x2}; ");
        return sb.Length == 0 ? null : sb.ToString();
    }

    /// <summary>
    /// Compares the emulator with the host on every result the SDM defines, on completed and on
    /// faulting cases alike: registers, defined flags, the data selectors, the data area, and for
    /// an exception its vector (the signal frame's trapno), error code, EIP and, for #PF, CR2.
    /// Each mask below names what the host's signal frame (or the ring) makes unknowable.
    /// </summary>
    private static string? CompareNative(DiffCase c, Outcome n, Outcome e, int ring)
    {
        var sb = new StringBuilder();
        if (n.End == EndKind.Exception)
        {
            if (e.End != EndKind.Exception) return $"host raised signal {n.Signal} (vector {n.Vector}) at {n.Eip:x8}; emulator ended {e.End} {e.Message}";
            if (!SameVectorClass(n, e.Vector) || n.Vector != e.Vector) sb.Append($"vector: host signal {n.Signal} trapno {n.Vector}, emulator vector {e.Vector}; ");
            if (n.Eip != e.Eip) sb.Append($"exception eip: host {n.Eip:x8}, emulator {e.Eip:x8}; ");
            uint errMask = 0xFFFFFFFF;
            if (n.Vector == Vectors.PF)
            {
                // The host runs 4-level paging with EFER.NXE, which reports instruction fetches in
                // bit 4 (I/D); 2-level paging has no NX, so the SDM (vol. 3 §4.7) leaves it clear.
                errMask &= ~0x10u;
                // At ring 0 the access is a supervisor one: bit 2 (U/S) is clear by definition.
                if (ring == 0) errMask &= ~0x4u;
                if (n.Cr2 != e.Cr2) sb.Append($"cr2: host {n.Cr2:x8}, emulator {e.Cr2:x8}; ");
            }
            // (Other vectors: Linux's sigcontext.cr2 is the thread's last page-fault address, stale.)
            if (((n.ErrorCode ^ e.ErrorCode) & errMask) != 0) sb.Append($"error code: host {n.ErrorCode:x}, emulator {e.ErrorCode:x}; ");
        }
        else if (e.End != EndKind.Completed)
            return $"host completed; emulator ended {e.End} vector {e.Vector} at {e.Eip:x8} {e.Message}";
        for (int r = 0; r < 8; r++)
        {
            uint diff = (n.Regs[r] ^ e.Regs[r]) & ~c.UndefinedRegBits[r];
            if (diff != 0) sb.Append($"{Reg.Names[r]}: host {n.Regs[r]:x8} emulator {e.Regs[r]:x8}; ");
        }
        uint fmask = DiffCase.ComparedFlags & ~c.UndefinedFlags;
        uint fd = (n.Eflags ^ e.Eflags) & fmask;
        if (fd != 0) sb.Append($"flags {FlagNames(fd)}: host {FlagNames(n.Eflags & DiffCase.ComparedFlags)} emulator {FlagNames(e.Eflags & DiffCase.ComparedFlags)} (compared {FlagNames(fmask)}); ");
        for (int s = 0; s < 6; s++)
        {
            // At ring 0, CS and SS hold the kernel's selectors by construction.
            if (ring == 0 && s is Seg.CS or Seg.SS) continue;
            if (n.Sregs[s] != e.Sregs[s]) sb.Append($"{Seg.Names[s]}: host {n.Sregs[s]:x4} emulator {e.Sregs[s]:x4}; ");
        }
        int bytes = 0;
        bool faulted = n.End == EndKind.Exception;
        for (int i = 0; i < DiffCase.DataSize && bytes < 8; i++)
            if (n.Data[i] != e.Data[i] && !(faulted && c.DataUndefinedOnFault.Exists(r => i >= r.Offset && i < r.Offset + r.Length))) { sb.Append($"mem {DiffCase.DataBase + (uint)i:x8}: host {n.Data[i]:x2} emulator {e.Data[i]:x2}; "); bytes++; }
        // The host cannot write its read-only guard page, so the emulator must not have either.
        if (e.Guard != null && FirstDiff(e.Guard, DataArea.GuardImage()) is int g and >= 0)
            sb.Append($"emulator wrote the read-only page at {DiffCase.GuardBase + (uint)g:x8}; ");
        return sb.Length == 0 ? null : sb.ToString();
    }

    /// <summary>SIGFPE = #DE, SIGILL = #UD, SIGTRAP = #BP/#DB, SIGSEGV/SIGBUS = #GP #SS #PF #NP #TS #BR #OF #AC.</summary>
    private static bool SameVectorClass(Outcome n, int vector) => n.Signal switch
    {
        8 => vector == Vectors.DE,
        4 => vector == Vectors.UD,
        5 => vector is Vectors.BP or Vectors.DB,
        _ => vector is Vectors.GP or Vectors.SS or Vectors.PF or Vectors.NP or Vectors.TS or Vectors.BR or Vectors.OF or Vectors.AC,
    };

    private static int FirstDiff(byte[] a, byte[] b)
    {
        for (int i = 0; i < a.Length; i++) if (a[i] != b[i]) return i;
        return -1;
    }

    public static string FlagNames(uint f)
    {
        var sb = new StringBuilder();
        void F(uint bit, string name) { if ((f & bit) != 0) sb.Append(sb.Length > 0 ? " " : "").Append(name); }
        F(Fl.CF, "CF"); F(Fl.PF, "PF"); F(Fl.AF, "AF"); F(Fl.ZF, "ZF"); F(Fl.SF, "SF"); F(Fl.DF, "DF"); F(Fl.OF, "OF");
        return sb.Length == 0 ? "-" : sb.ToString();
    }

    public static string Disassemble(byte[] code)
    {
        var dec = Iced.Intel.Decoder.Create(32, code, DiffCase.CodeBase);
        var fmt = new IntelFormatter();
        var output = new StringOutput();
        var sb = new StringBuilder();
        while (dec.IP < DiffCase.CodeBase + (ulong)code.Length)
        {
            var insn = dec.Decode();
            fmt.Format(insn, output);
            int off = (int)(insn.IP - DiffCase.CodeBase);
            sb.Append($"    {insn.IP:x8}  {Convert.ToHexString(code, off, Math.Min(insn.Length, code.Length - off)).ToLowerInvariant(),-24} {output.ToStringAndReset()}\n");
        }
        return sb.ToString();
    }

    private static string Describe(DiffCase c, Outcome n, Outcome e, string why)
    {
        var sb = new StringBuilder();
        sb.Append($"[{c.Family} case {c.Id}] {why}\n  code:\n{Disassemble(c.Code)}");
        sb.Append("  inputs: ");
        for (int r = 0; r < 8; r++) sb.Append($"{Reg.Names[r]}={c.Regs[r]:x8} ");
        sb.Append($"flags={FlagNames(c.Eflags)}\n");
        foreach (var (off, bytes) in c.Patches)
            sb.Append($"  mem {DiffCase.DataBase + off:x8} = {Convert.ToHexString(bytes).ToLowerInvariant()}\n");
        sb.Append($"  undefined flags: {FlagNames(c.UndefinedFlags)}; guard page {c.Guard}{(c.Ring3Only ? "; ring 3 only" : "")}\n");
        sb.Append($"  host:     {n}\n  emulator: {e} icount {e.Icount}\n");
        return sb.ToString();
    }
}
