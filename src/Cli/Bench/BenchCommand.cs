using System.Diagnostics;
using Replayvisor.Engine.Cpu;

namespace Replayvisor.Cli.Bench;

/// <summary>
/// `replayvisor bench`: MIPS of the CPU, block cache vs plain interpreter, on the integer
/// workload, string copies/fills (each rep iteration counts as one instruction) and a loop with
/// data on its own code page.
/// </summary>
public static class BenchCommand
{
    public static int Run(ulong instructions, int rounds, TextWriter output)
    {
        output.WriteLine($"paging on, {instructions:N0} instructions per round (interpreter: a tenth), best of {rounds}");
        output.WriteLine($"{"workload",-16} {"block cache",12} {"interpreter",12} {"ratio",8}");
        Report("integer", IntegerWorkload.Create, instructions, rounds, output);
        Report("rep movs/stos", ExtraWorkloads.CreateString, instructions, rounds, output);
        Report("data on code pg", ExtraWorkloads.CreateCodePageData, instructions, rounds, output);
        return 0;
    }

    private static void Report(string name, Func<bool, X86Cpu> create, ulong instructions, int rounds, TextWriter output)
    {
        double cached = Measure(create, true, instructions, rounds);
        double plain = Measure(create, false, instructions / 10, rounds);
        output.WriteLine($"{name,-16} {cached,8:F1} MIPS {plain,7:F1} MIPS {cached / plain,7:F2}x");
    }

    private static double Measure(Func<bool, X86Cpu> create, bool blockCache, ulong instructions, int rounds)
    {
        double best = 0;
        var warm = create(blockCache);
        warm.Run(Math.Min(instructions, 2_000_000));
        for (int r = 0; r < rounds; r++)
        {
            var cpu = create(blockCache);
            var sw = Stopwatch.StartNew();
            cpu.Run(instructions);
            sw.Stop();
            if (cpu.Icount != instructions) throw new InvalidOperationException($"workload stopped early at {cpu.Icount}: {cpu.StopMessage}");
            best = Math.Max(best, instructions / sw.Elapsed.TotalSeconds / 1e6);
        }
        return best;
    }
}
