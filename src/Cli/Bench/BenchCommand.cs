using System.Diagnostics;
using Replayvisor.Cli.Bench;

namespace Replayvisor.Cli.Bench;

/// <summary>`replayvisor bench`: MIPS of the CPU on the integer workload, block cache vs plain interpreter.</summary>
public static class BenchCommand
{
    public static int Run(ulong instructions, int rounds, TextWriter output)
    {
        output.WriteLine($"integer workload, paging on, {instructions:N0} instructions per round, best of {rounds}");
        double cached = Measure(true, instructions, rounds);
        double plain = Measure(false, instructions / 10, rounds);
        output.WriteLine($"block cache:       {cached,8:F1} MIPS");
        output.WriteLine($"plain interpreter: {plain,8:F1} MIPS");
        output.WriteLine($"ratio:             {cached / plain,8:F2}x");
        return 0;
    }

    private static double Measure(bool blockCache, ulong instructions, int rounds)
    {
        double best = 0;
        var warm = IntegerWorkload.Create(blockCache);
        warm.Run(Math.Min(instructions, 2_000_000));
        for (int r = 0; r < rounds; r++)
        {
            var cpu = IntegerWorkload.Create(blockCache);
            var sw = Stopwatch.StartNew();
            cpu.Run(instructions);
            sw.Stop();
            if (cpu.Icount != instructions) throw new InvalidOperationException($"workload stopped early at {cpu.Icount}: {cpu.StopMessage}");
            best = Math.Max(best, instructions / sw.Elapsed.TotalSeconds / 1e6);
        }
        return best;
    }
}
