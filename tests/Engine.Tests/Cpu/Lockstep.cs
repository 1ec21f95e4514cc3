using Replayvisor.Engine.Cpu;

namespace Replayvisor.Engine.Tests.Cpu;

/// <summary>
/// Two machines run in the same random steps (the compiled-tier tests: a tier against a reference
/// tier): after every step both stopped for the same reason and are in the same state.
/// </summary>
internal static class Lockstep
{
    /// <summary>Up to <paramref name="steps"/> steps of 1 to <paramref name="maxStep"/> - 1 instructions each, until a stop other than the instruction limit.</summary>
    public static void RunAlike(TestMachine tested, TestMachine reference, Func<TestMachine, string> state, Random rng, int steps, int maxStep)
    {
        for (int step = 0; step < steps; step++)
        {
            ulong n = (ulong)rng.Next(1, maxStep);
            var rt = tested.Run(n);
            var rr = reference.Run(n);
            Assert.Equal(rr, rt);
            Assert.Equal(state(reference), state(tested));
            if (rr != StopReason.InstructionLimit) break;
        }
    }
}
