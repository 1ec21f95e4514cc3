using Replayvisor.Engine.Trace;
using Replayvisor.Replay.TimeTravel;
using Replayvisor.Replay.Text;

namespace Replayvisor.Cli.Debug;

/// <summary>The recorded events just before and after a session's position (file order, by event index).</summary>
public static class TraceNeighbourhood
{
    /// <summary>
    /// Up to <paramref name="count"/> events before and after the session's event index, with their indices,
    /// and the damage that ends the listing early (a damaged chunk ahead: the replay has not reached it).
    /// </summary>
    public static (List<(long Index, TraceEvent Event)> Previous, List<(long Index, TraceEvent Event)> Next, TraceFormatException? Damage) Around(TimeTravelSession s, int count)
    {
        long here = s.EventIndex;
        var previous = new List<(long, TraceEvent)>();
        var next = new List<(long, TraceEvent)>();
        var index = s.Reader.Index;
        long first = 0;
        for (int c = 0; c < index.Count; c++)
        {
            long end = first + index[c].EventCount;
            if (end > here - count && first < here + count)
            {
                IReadOnlyList<TraceEvent> events;
                try { events = s.Reader.ReadChunk(index[c]); }
                catch (TraceFormatException e) { return (previous, next, e); }
                for (int i = 0; i < events.Count; i++)
                {
                    long k = first + i;
                    if (k >= here - count && k < here) previous.Add((k, events[i]));
                    else if (k >= here && k < here + count) next.Add((k, events[i]));
                }
            }
            first = end;
        }
        return (previous, next, null);
    }

    /// <summary>"previous events: ... next events: ..." as lines.</summary>
    public static string Text(TimeTravelSession s, int count)
    {
        var (previous, next, damage) = Around(s, count);
        var w = new System.Text.StringBuilder();
        w.Append("previous events:\n");
        if (previous.Count == 0) w.Append("  (none)\n");
        // As `dump` prints them: code addresses named function+offset from the guest's symbols.
        foreach (var (k, e) in previous) w.Append($"  #{k} {EventText.Text(e, s.Symbols, s.IretJumpers).TrimStart()}\n");
        w.Append("next events:\n");
        foreach (var (k, e) in next) w.Append($"  #{k} {EventText.Text(e, s.Symbols, s.IretJumpers).TrimStart()}\n");
        if (damage != null) w.Append($"  (no more: {damage.Message})\n");
        else if (next.Count == 0) w.Append("  (none: the end of the trace)\n");
        return w.ToString();
    }
}
