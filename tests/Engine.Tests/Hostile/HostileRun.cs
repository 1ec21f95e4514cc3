using System.Globalization;
using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Machine;

namespace Replayvisor.Engine.Tests.Hostile;

/// <summary>
/// One hostile guest: a kernel image plus a deterministic setup applied to a fresh machine (memory
/// written and pages made user-accessible before the first instruction).
/// </summary>
internal sealed record HostileCase(string Name, byte[] Image, Action<XenMachine>? Prepare, ulong Budget, bool Pae = true);

/// <summary>
/// Runs hostile cases: the run must end with a <see cref="MachineExit"/> of any kind (never a .NET
/// exception, never a hang), and a second run of the same case must end in the same state (hash and
/// instruction count); optionally a third run with the block cache off must agree too.
/// </summary>
/// <remarks>
/// CI runs a fixed, small number of cases per test (the whole folder in well under 20 s). Set
/// <c>REPLAYVISOR_HOSTILE_ITERATIONS</c> to a number of cases per test for a longer run; the seeds
/// stay fixed (case i of a test uses seed base + i), so a failure names the case to rerun.
/// </remarks>
internal static class HostileRun
{
    public const string IterationsVariable = "REPLAYVISOR_HOSTILE_ITERATIONS";
    private static readonly TimeSpan Watchdog = TimeSpan.FromSeconds(60);

    public static int Iterations(int ciDefault)
    {
        var text = Environment.GetEnvironmentVariable(IterationsVariable);
        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0 ? n : ciDefault;
    }

    public sealed record Outcome(MachineExit Exit, byte[] Hash, ulong Icount, long Hypercalls);

    /// <summary>One run; the compiled tier compiles every block on its second run, so fuzzed code that runs more than once runs compiled.</summary>
    public static Outcome Once(HostileCase c, CpuTier tier = CpuTier.Compiled)
    {
        var task = Task.Run(() =>
        {
            var m = new XenMachine(c.Image, new XenMachineOptions { MemoryMiB = 8, Tier = tier, CompileThreshold = 1 });
            c.Prepare?.Invoke(m);
            var exit = Drive(m, m.Icount + c.Budget);
            long calls = 0;
            foreach (var kv in m.HypercallStats) calls += kv.Value;
            return new Outcome(exit, m.StateHash(), m.Icount, calls);
        });
        try
        {
            if (!task.Wait(Watchdog)) Assert.Fail($"{c.Name}: no exit after {Watchdog.TotalSeconds} s (hang)");
        }
        catch (AggregateException e)
        {
            Assert.Fail($"{c.Name}: the emulator threw: {e.InnerException}");
        }
        return task.Result;
    }

    /// <summary>
    /// Runs to instruction count <paramref name="end"/>. An instruction the CPU does not implement ends
    /// a run (a legal outcome); to explore further, step over it (decoded length at CS:EIP) and go
    /// on, a bounded number of times.
    /// </summary>
    public static MachineExit Drive(XenMachine m, ulong end)
    {
        var exit = m.Run(end - m.Icount);
        for (int skips = 0; exit.Kind == MachineExitKind.Unsupported && skips < 1_000_000 && m.Icount < end && SkipInstruction(m); skips++)
            exit = m.Run(end - m.Icount);
        return exit;
    }

    private static bool SkipInstruction(XenMachine m)
    {
        var cpu = m.Cpu;
        var bytes = new byte[15];
        int n = 0;
        for (; n < 15; n++)
        {
            if (!cpu.Translate(cpu.Segs[Seg.CS].Base + cpu.Eip + (uint)n, Access.Read, false, out ulong pa)) { cpu.ClearFault(); break; }
            bytes[n] = cpu.Memory.Read8(pa);
        }
        var d = Iced.Intel.Decoder.Create(32, new Iced.Intel.ByteArrayCodeReader(bytes, 0, n), cpu.Eip);
        d.Decode(out var insn);
        if (insn.IsInvalid || insn.Length == 0) return false;
        cpu.Eip += (uint)insn.Length;
        return true;
    }

    /// <summary>
    /// Runs the case under the compiled tier and the block cache (and the plain interpreter when
    /// asked); every run must end in the same state at the same instruction count. Returns the first outcome.
    /// </summary>
    public static Outcome Check(HostileCase c, bool alsoWithoutBlockCache = false)
    {
        var a = Once(c, CpuTier.Compiled);
        var b = Once(c, CpuTier.BlockCache);
        Assert.True(a.Icount == b.Icount && a.Hash.AsSpan().SequenceEqual(b.Hash),
            $"{c.Name}: compiled tier and block cache differ: {a.Exit} / {b.Exit}");
        Assert.Equal(a.Exit, b.Exit);
        if (alsoWithoutBlockCache)
        {
            var s = Once(c, CpuTier.Interpreter);
            Assert.True(a.Icount == s.Icount && a.Hash.AsSpan().SequenceEqual(s.Hash),
                $"{c.Name}: compiled tier and plain interpreter differ: {a.Exit} / {s.Exit}");
        }
        return a;
    }
}
