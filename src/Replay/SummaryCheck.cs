using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Session;
using Replayvisor.Engine.Time;
using Replayvisor.Engine.Trace;

namespace Replayvisor.Replay;

/// <summary>
/// The end of a complete replay against the recording's summary (docs/trace-format.md "Index and
/// footer"): final instruction count and exit, final machine state hash, and guest time.
/// </summary>
public static class SummaryCheck
{
    /// <summary>Records a divergence on <paramref name="verifier"/> when the replay's end differs from <paramref name="recorded"/>.</summary>
    public static void Check(TraceSummary? recorded, XenMachine m, MachineExit exit, Verifier verifier)
    {
        ArgumentNullException.ThrowIfNull(m);
        ArgumentNullException.ThrowIfNull(exit);
        ArgumentNullException.ThrowIfNull(verifier);
        if (recorded is not { } s) return;
        if (s.FinalIcount != exit.Icount || s.Exit != RunOutcome.ExitOf(exit.Kind))
        {
            verifier.Fail(exit.Icount, $"the recording ended at instruction {s.FinalIcount} ({s.Exit}); the replay ended at {exit.Icount} ({RunOutcome.ExitOf(exit.Kind)})");
            return;
        }
        // Traces recorded before the summary carried a hash have none (an empty array).
        if (s.FinalStateHash.Count > 0 && !s.FinalStateHash.AsSpan().SequenceEqual(m.StateHash()))
        {
            verifier.Fail(exit.Icount, $"the final machine state differs from the recording's (recorded state hash {Convert.ToHexStringLower(s.FinalStateHash.AsSpan())})");
            return;
        }
        // The recorder takes the guest time from the virtual clock only (a host clock read would be an unlogged input).
        ulong guestNs = m.Clock is VirtualClock vc ? vc.SystemTimeNs(exit.Icount) : 0;
        if (s.GuestTimeNs != guestNs)
            verifier.Fail(exit.Icount, $"the recording ended at guest time {s.GuestTimeNs} ns; the replay at {guestNs} ns");
    }
}
