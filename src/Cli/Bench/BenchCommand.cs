using System.Diagnostics;
using System.Text.Json.Nodes;
using Replayvisor.Engine.Cpu;

namespace Replayvisor.Cli.Bench;

/// <summary>
/// `replayvisor bench`: MIPS of the CPU per tier (compiled, block cache, plain interpreter) on the integer
/// workload, string copies/fills (each rep iteration counts as one instruction) and a loop with
/// data on its own code page.
/// </summary>
public static class BenchCommand
{
    /// <summary>The fewest instructions per round --instructions accepts.</summary>
    public const ulong MinInstructions = 10_000;

    public static int Run(ulong instructions, int rounds, bool json, TextWriter output)
    {
        if (rounds < 1) throw new CliException(ExitCodes.Usage, $"--rounds {rounds}: must be at least 1");
        // Fewer instructions measure the clocks, not the CPU: 0 gave NaN MIPS, and with --json an internal error
        // (JSON has no NaN or infinity); the interpreter runs a tenth, so this is 1,000 for it.
        if (instructions < MinInstructions)
            throw new CliException(ExitCodes.Usage, $"--instructions {instructions}: must be at least {MinInstructions:N0} (the interpreter runs a tenth of them)");
        // With --json, stdout carries one document: the text lines are dropped, the figures collected.
        var text = json ? TextWriter.Null : output;
        var workloads = new JsonArray();
        text.WriteLine($"paging on, {instructions:N0} instructions per round (interpreter: a tenth), best of {rounds}");
        text.WriteLine("MIPS by wall-clock time; in brackets by the thread's CPU time (steadier on a shared machine)");
        text.WriteLine($"{"workload",-16} {"compiled",21} {"block cache",21} {"interpreter",21} {"comp/bc",8} {"bc/int",8}");
        Report("integer", IntegerWorkload.Create, instructions, rounds, text, workloads);
        Report("rep movs/stos", ExtraWorkloads.CreateString, instructions, rounds, text, workloads);
        Report("rep cmps/scas", ExtraWorkloads.CreateScan, instructions, rounds, text, workloads);
        Report("data on code pg", ExtraWorkloads.CreateCodePageData, instructions, rounds, text, workloads);
        if (json)
            output.WriteLine(new JsonObject
            {
                ["benchmark"] = "cpu",
                ["instructionsPerRound"] = instructions,
                ["interpreterInstructionsPerRound"] = instructions / 10,
                ["rounds"] = rounds,
                ["workloads"] = workloads,
            }.ToJsonString(JsonOutput.Options));
        return 0;
    }

    /// <summary>a / b, or null when b is 0 (a clock that read no time): JSON has no NaN or infinity.</summary>
    private static double? Ratio(double a, double b) => b > 0 ? Math.Round(a / b, 3) : null;

    private static JsonObject Mips(double wall, double cpu) => new() { ["wallMips"] = Math.Round(wall, 3), ["cpuMips"] = Math.Round(cpu, 3) };

    private static void Report(string name, Func<CpuTier, X86Cpu> create, ulong instructions, int rounds, TextWriter output, JsonArray results)
    {
        // For profiling one workload: REPLAYVISOR_BENCH_ONLY=<workload name prefix>, compiled tier only.
        string? only = Environment.GetEnvironmentVariable("REPLAYVISOR_BENCH_ONLY");
        if (only != null)
        {
            if (!name.StartsWith(only, StringComparison.Ordinal)) return;
            var (w, c) = MeasureTiers(create, [CpuTier.Compiled], instructions, rounds)[0];
            output.WriteLine($"{name,-16} {w,7:F1} ({c,7:F1}) MIPS");
            results.Add(new JsonObject { ["name"] = name, ["compiled"] = Mips(w, c), ["blockCache"] = null, ["interpreter"] = null, ["ratio"] = null, ["compiledOverBlockCache"] = null });
            return;
        }
        var m = MeasureTiers(create, [CpuTier.Compiled, CpuTier.BlockCache, CpuTier.Interpreter], instructions, rounds);
        var (comp, compCpu) = m[0];
        var (cached, cachedCpu) = m[1];
        var (plain, plainCpu) = m[2];
        output.WriteLine($"{name,-16} {comp,7:F1} ({compCpu,7:F1}) MIPS {cached,7:F1} ({cachedCpu,7:F1}) MIPS {plain,7:F1} ({plainCpu,7:F1}) MIPS {compCpu / cachedCpu,7:F2}x {cachedCpu / plainCpu,7:F2}x");
        results.Add(new JsonObject
        {
            ["name"] = name, ["compiled"] = Mips(comp, compCpu), ["blockCache"] = Mips(cached, cachedCpu), ["interpreter"] = Mips(plain, plainCpu),
            ["ratio"] = Ratio(cached, plain), ["compiledOverBlockCache"] = Ratio(compCpu, cachedCpu),
        });
    }

    /// <summary>
    /// Best MIPS (wall, thread CPU) of each tier on fresh machines (the interpreter runs a tenth of
    /// the instructions), after one warm-up run of each. The rounds interleave the tiers: a
    /// workload's first few hundred milliseconds in a process run several times slower whichever
    /// the tier (.NET's tiered JIT still runs unoptimized code of the handlers it first uses), so
    /// measured one tier after the other the tier measured first lost (rep movs/stos
    /// compiled/block cache read 0.81x); load that drifts during the run also touches them alike.
    /// </summary>
    private static (double Wall, double Cpu)[] MeasureTiers(Func<CpuTier, X86Cpu> create, CpuTier[] tiers, ulong instructions, int rounds)
    {
        ulong Count(CpuTier t) => t == CpuTier.Interpreter ? instructions / 10 : instructions;
        foreach (var t in tiers) create(t).Run(Math.Min(Count(t), 2_000_000));
        var best = new (double Wall, double Cpu)[tiers.Length];
        for (int r = 0; r < rounds; r++)
        {
            for (int i = 0; i < tiers.Length; i++)
            {
                ulong n = Count(tiers[i]);
                var cpu = create(tiers[i]);
                var cpu0 = ThreadCpuTime.Start();
                var sw = Stopwatch.StartNew();
                cpu.Run(n);
                sw.Stop();
                double cpuSeconds = cpu0.Seconds;
                if (cpu.Icount != n) throw new InvalidOperationException($"workload stopped early at {cpu.Icount}: {cpu.StopMessage}");
                best[i].Wall = Math.Max(best[i].Wall, n / sw.Elapsed.TotalSeconds / 1e6);
                if (cpuSeconds > 0) best[i].Cpu = Math.Max(best[i].Cpu, n / cpuSeconds / 1e6);
            }
        }
        return best;
    }
}
