namespace Replayvisor.Engine.Inputs;

/// <summary>
/// How often (in instructions) a running guest stops at a poll, in every kind of run: a live run
/// or recording looks for console input and Ctrl-C there, a replay looks for nothing, yet stops
/// at the same period. A poll that injects nothing changes no result (XenMachine.Run), but where
/// the CPU stops decides where its run loop enters blocks, and so which compiled regions form
/// and which one runs a hot loop (docs/compiled-tier.md, "What a compiled region is"): with the
/// same slices a replay runs the code its recording ran, at the same speed.
/// </summary>
public static class PollPeriod
{
    public const ulong Instructions = 100_000;

    /// <summary>The next periodic poll after <paramref name="icount"/> (saturating).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public static ulong After(ulong icount) => ulong.MaxValue - icount < Instructions ? ulong.MaxValue : icount + Instructions;
}
