namespace Replayvisor.Engine.Time;

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

    /// <summary>
    /// The instruction count at which to read the clock again while waiting for systemNs. It is a
    /// function of the last logged read (its value and instruction count) only, never of where the
    /// machine happens to stop, so extra stops (input polling, checkpoints) cannot move it.
    /// </summary>
    public static ulong IcountAt(ulong icount, ulong lastReadIcount, ulong lastReadNs, ulong systemNs)
    {
        if (systemNs <= lastReadNs) return icount;
        ulong wait = systemNs - lastReadNs; // about one instruction per nanosecond
        ulong at = lastReadIcount + Math.Clamp(wait, MinSlice, MaxSlice);
        return Math.Max(at, icount);
    }
}
