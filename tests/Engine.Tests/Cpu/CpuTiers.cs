using Replayvisor.Engine.Cpu;

namespace Replayvisor.Engine.Tests.Cpu;

/// <summary>Test data: every CPU tier (the compiled tier compiles each block before its first run in these tests).</summary>
public static class CpuTiers
{
    public static IEnumerable<object[]> All() => Enum.GetValues<CpuTier>().Select(t => new object[] { t });
}
