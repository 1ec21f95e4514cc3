namespace Replayvisor.Engine.Machine;

/// <summary>
/// The rule a logged clock (the recorder's host clock, and the replayer's clock reading the same
/// values back) uses to decide when to look at the time again. It depends only on values that are
/// in the trace, so recording and replay stop at the same instruction counts.
/// </summary>
public static class HostTimePolicy
{
    /// <summary>Longest stretch run without reading the clock (bounds timer latency under a host clock).</summary>
    public const ulong MaxSlice = 2_000_000;

    /// <summary>Shortest stretch, so a late deadline does not degenerate into single-stepping.</summary>
    public const ulong MinSlice = 1_000;

    /// <summary>The instruction count at which to read the clock again while waiting for systemNs.</summary>
    public static ulong IcountAt(ulong icount, ulong lastReadNs, ulong systemNs)
    {
        if (systemNs <= lastReadNs) return icount;
        ulong wait = systemNs - lastReadNs; // about one instruction per nanosecond
        return icount + Math.Clamp(wait, MinSlice, MaxSlice);
    }
}
