using System.Globalization;
using System.Text;
using Replayvisor.Replay.Diff;
using Replayvisor.Replay.Text;

namespace Replayvisor.Cli.Diff;

/// <summary>The human-readable diff: a unified diff of the aligned events, the summary, the console by line and the pinpointed instruction.</summary>
public static class DiffText
{
    public static string Render(TraceDiffResult r)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"--- {r.A.Path}\t{r.A.Reader.Header.GuestImageName} ({r.A.Events.Count} events, {r.A.FinalIcount:N0} instructions, {r.A.Exit})");
        sb.AppendLine($"+++ {r.B.Path}\t{r.B.Reader.Header.GuestImageName} ({r.B.Events.Count} events, {r.B.FinalIcount:N0} instructions, {r.B.Exit})");
        if (r.AgreeToEarlyEnd && r.EndsEarly is { Stopped: true } stop)
        {
            // The recorder ended that run (docs/diff.md "Runs that end early"): the other run simply goes on.
            var (s, o, sn, on) = stop.IsA ? (r.A, r.B, "A", "B") : (r.B, r.A, "B", "A");
            sb.AppendLine($"the runs agree up to instruction {s.FinalIcount:N0}, where {sn} ({s.Path}) was stopped {s.StoppedBy}; {on} goes on to instruction {o.FinalIcount:N0} ({o.Exit})");
            sb.AppendLine($"{sn}'s {r.Lines.Count} events are {on}'s first {r.Lines.Count}; {on}'s {stop.NotCompared} later events are not compared");
            return sb.ToString();
        }
        if (r.AgreeToEarlyEnd && r.EndsEarly is { } end)
        {
            // Not a divergence: the incomplete trace holds less of the run, and all of it agrees (docs/diff.md "Incomplete traces").
            var (s, o, sn, on) = end.IsA ? (r.A, r.B, "A", "B") : (r.B, r.A, "B", "A");
            sb.AppendLine($"{sn} ends early: {s.Path} is incomplete ({s.Reader.IncompleteReason}); its {r.Lines.Count} events agree with {on}'s first {r.Lines.Count}, up to instruction {s.FinalIcount:N0}");
            sb.AppendLine($"not compared: {on}'s {end.NotCompared} later events, to instruction {o.FinalIcount:N0} ({o.Exit}): {s.Path} holds nothing after instruction {s.FinalIcount:N0}");
            return sb.ToString();
        }
        if (r.Identical)
        {
            sb.AppendLine($"identical: {r.A.Events.Count} events agree{(r.SameImage ? " (same guest image)" : "")}, both runs end at instruction {r.A.FinalIcount:N0} ({r.A.Exit})");
            return sb.ToString();
        }
        foreach (var h in r.Hunks)
        {
            sb.AppendLine($"@@ -{h.StartA},{h.CountA} +{h.StartB},{h.CountB} @@");
            foreach (var l in h.Lines)
            {
                bool first = r.FirstDifference >= 0 && ReferenceEquals(l, r.Lines[r.FirstDifference]);
                sb.AppendLine(Line(l) + (first ? "    <== first divergence" : ""));
            }
        }
        if (r.FirstDifference < 0 && (r.A.FinalIcount != r.B.FinalIcount || r.A.Exit != r.B.Exit))
            sb.AppendLine($"the aligned events agree; the runs end differently: A at {r.A.FinalIcount:N0} ({r.A.Exit}), B at {r.B.FinalIcount:N0} ({r.B.Exit})");
        else if (r.FirstDifference < 0)
            sb.AppendLine("the aligned events agree (in order, not in timing); the recordings differ below");
        else
        {
            var f = r.Lines[r.FirstDifference];
            var e = f.A ?? f.B!;
            sb.AppendLine($"first divergence: {(f.A != null ? "A" : "B")} {e.Text} at instruction {e.Icount:N0}{In(e)}");
        }
        if (r.EndsEarly is { } cut)
        {
            var (s, sn, on) = cut.IsA ? (r.A, "A", "B") : (r.B, "B", "A");
            string why = cut.Stopped ? $"was stopped {s.StoppedBy}, instruction" : $"is incomplete ({s.Reader.IncompleteReason}) and ends at instruction";
            sb.AppendLine($"note: {sn} ({s.Path}) {why} {s.FinalIcount:N0}; {on}'s {cut.NotCompared} later events are not compared");
        }
        if (r.FirstEvent is { } fe)
        {
            sb.AppendLine($"first differing recorded event (same image) #{fe.Index} at instruction {fe.Icount:N0}:");
            // As `dump` prints them (the JSON form holds `dump --json`'s objects).
            sb.AppendLine($"  A: {(fe.A == null ? "(none: the run ended)" : EventText.Text(fe.A, r.A.Symbols, r.A.IretJumpers).TrimStart())}");
            sb.AppendLine($"  B: {(fe.B == null ? "(none: the run ended)" : EventText.Text(fe.B, r.B.Symbols, r.B.IretJumpers).TrimStart())}");
        }
        sb.AppendLine("summary by kind (A / B):");
        foreach (var c in r.ByKind) sb.AppendLine($"  {c.Name,-12} {c.A,8} {c.B,8}{(c.A != c.B ? "   *" : "")}");
        sb.AppendLine("summary by hypercall (A / B):");
        foreach (var c in r.ByHypercall) sb.AppendLine($"  {c.Name,-24} {c.A,8} {c.B,8}{(c.A != c.B ? "   *" : "")}");
        if (r.ConsoleHunks.Count > 0)
        {
            sb.AppendLine("console:");
            foreach (var h in r.ConsoleHunks)
            {
                sb.AppendLine($"@@ -{h.StartA},{h.CountA} +{h.StartB},{h.CountB} @@");
                foreach (var l in h.Lines) sb.AppendLine($"{l.Op}{(l.A ?? l.B)!.Text["console ".Length..]}");
            }
        }
        if (r.Pinpoint is { } p)
        {
            Pinpoint(sb, p);
            foreach (string note in KeyframeNotes.Lines(p, r.A.Path, r.B.Path)) sb.AppendLine(note);
        }
        else if (r.PinpointError != null) sb.AppendLine($"pinpoint: {r.PinpointError}");
        return sb.ToString();
    }

    private static string In(DiffEvent e) => e.Function.Length > 0 ? $" in {e.Function}" : "";

    private static string Line(AlignedLine l)
    {
        string where(DiffEvent? e) => e == null ? new string(' ', 14) : e.Icount.ToString(CultureInfo.InvariantCulture).PadLeft(14);
        var e = l.A ?? l.B!;
        string fn = e.Function.Length > 0 ? e.Function : "-";
        string detail = e.Detail != null ? "  " + e.Detail : "";
        if (l.Op == AlignedLine.Same && l.B != null && l.A!.Detail != l.B.Detail) detail = $"  A {l.A.Detail ?? "-"} / B {l.B.Detail ?? "-"}";
        string fnB = l.Op == AlignedLine.Same && l.B!.Function != e.Function ? "/" + (l.B.Function.Length > 0 ? l.B.Function : "-") : "";
        return $"{l.Op} {where(l.A)} {where(l.B)}  {fn}{fnB,-0}: {e.Text}{detail}";
    }

    /// <summary>", from keyframes 900 / 900" when a run reached the window from a keyframe rather than from instruction 0.</summary>
    private static string ReachedFrom(PinpointResult p) =>
        p.ReachedFromA == 0 && p.ReachedFromB == 0 ? "" : $", from keyframes {p.ReachedFromA:N0} / {p.ReachedFromB:N0}";

    private static void Pinpoint(StringBuilder sb, PinpointResult p)
    {
        sb.AppendLine($"first instruction with a different result: instruction {p.Icount:N0}");
        sb.AppendLine($"  re-executed from checkpoint {p.StartIcount:N0} to {p.EndIcount:N0}: {p.Passes} passes, {p.WindowInstructions:N0} instructions in the window and {p.ReachInstructions:N0} reaching it (both runs{ReachedFrom(p)})");
        if (p.StateParts.Count > 0) sb.AppendLine($"  state that differs after it: {string.Join(", ", p.StateParts)}");
        sb.AppendLine($"  A: {p.A.Instruction}");
        sb.AppendLine($"  B: {p.B.Instruction}");
        if (p.Registers.Count > 0)
        {
            sb.AppendLine("  registers after it (A / B):");
            foreach (var reg in p.Registers) sb.AppendLine($"    {reg.Name,-7} {reg.A:x8}  {reg.B:x8}");
        }
        if (p.Memory.Count > 0)
        {
            sb.AppendLine("  memory after it (A / B):");
            foreach (var m in p.Memory)
            {
                string at = m.Virtual != 0 ? $"0x{m.Virtual:x8}{(m.Symbol.Length > 0 ? $" <{m.Symbol}>" : "")}" : $"machine 0x{m.Physical:x}";
                sb.AppendLine($"    {at}: {Convert.ToHexStringLower(m.A)}");
                sb.AppendLine($"    {new string(' ', at.Length)}  {Convert.ToHexStringLower(m.B)}");
            }
        }
    }
}
