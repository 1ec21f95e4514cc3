using Replayvisor.Engine.Trace;
using Replayvisor.Replay.TimeTravel;

namespace Replayvisor.Replay.Tests.TimeTravel;

/// <summary>Opens golden traces (traces/*.rvt) as stepping and time-travel sessions.</summary>
internal static class GoldenSessions
{
    public static TraceReader Open(string name) =>
        TraceReader.Open(new MemoryStream(File.ReadAllBytes(Path.Combine(Guests.RepoRoot, "traces", name))));

    public static TimeTravelSession TimeTravel(string name, TimeTravelOptions? options = null) => new(Open(name), options);

    /// <summary>General registers, EIP, EFLAGS and selectors: what gdb's 'g' packet shows.</summary>
    public static string Registers(Replayvisor.Engine.Cpu.X86Cpu c) =>
        $"{string.Join(",", c.Gpr)} eip={c.Eip:x8} fl={c.Eflags:x8} cs={c.Segs[1].Selector:x4} ss={c.Segs[2].Selector:x4} ds={c.Segs[3].Selector:x4}";
}
