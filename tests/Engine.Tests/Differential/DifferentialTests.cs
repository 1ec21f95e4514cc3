using Replayvisor.Engine.Cpu;
using Xunit.Abstractions;

namespace Replayvisor.Engine.Tests.Differential;

/// <summary>
/// CPU semantics checked against the host processor: one theory row per
/// instruction family; each runs its generated cases natively and in both emulator modes.
/// REPLAYVISOR_DIFF_CASES multiplies the case counts, REPLAYVISOR_DIFF_SEED changes the seed
/// (see README.md beside this file).
/// </summary>
public class DifferentialTests(ITestOutputHelper output)
{
    public static IEnumerable<object[]> FamilyNames => Families.Names;

    [Theory]
    [MemberData(nameof(FamilyNames))]
    public void MatchesHost(string family)
    {
        var f = Families.Get(family);
        FamilyResult r = DiffHarness.Run(f);
        output.WriteLine(r.Summary);
        foreach (var (vector, example) in r.ExceptionExamples) output.WriteLine($"  example ending in vector {vector}:\n{example}");
        if (r.Mismatches > 0)
        {
            string detail = string.Join("\n", r.Failures);
            output.WriteLine(detail);
            Assert.Fail($"{r.Summary}\n(rerun one family: dotnet test --filter \"FullyQualifiedName~Differential\" with REPLAYVISOR_DIFF_SEED={DiffHarness.BaseSeed})\n{detail}");
        }
        Assert.Equal(r.Cases, r.Passed);
    }

    /// <summary>Each family has its own name (its seed and its theory row derive from it).</summary>
    [Fact]
    public void FamilyNamesAreDistinct()
    {
        Assert.Equal(Families.All.Length, Families.All.Select(f => f.Name).Distinct().Count());
    }

    /// <summary>The C# fill must match the native runner's (a case with no code reports no changed bytes).</summary>
    [Fact]
    public void NativeRunnerRoundTrip()
    {
        var c = new DiffCase { Id = 7, Family = "self", Code = [0x90], FillSeed = 12345, Regs = [1, 2, 3, 4, DiffCase.StackTop, 6, 7, 8], Eflags = 0x8D5 };
        c.Patches.Add((0x10, [1, 2, 3]));
        Outcome n = NativeRunner.Run([c])[0];
        Assert.Equal(EndKind.Completed, n.End);
        Assert.Equal(c.InitialData(), n.Data);
        Assert.Equal(c.Regs, n.Regs);
        Assert.Equal(0x8D5u, n.Eflags & DiffCase.ComparedFlags);
        // The process's own selectors, which the emulator starts ring-3 runs with (LinuxSegments).
        Assert.Equal(new ushort[] { LinuxSegments.UserData, LinuxSegments.UserCode32, LinuxSegments.UserData, LinuxSegments.UserData, 0, 0 }, n.Sregs);
        Assert.Equal(n.Sregs, new EmulatorRunner(CpuTier.Compiled).Run(c).Sregs);
    }
}
