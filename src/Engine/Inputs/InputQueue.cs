using Replayvisor.Engine.Trace;

namespace Replayvisor.Engine.Inputs;

/// <summary>
/// The recorded inputs (<see cref="InputEvent"/>s: time values, console input, chaos delays) in
/// file order, for the replay halves. The clock and the other sources take from the same queue,
/// so inputs reach the guest in exactly the order the recorder produced them, even when several
/// happen at one instruction count.
/// </summary>
public sealed class InputQueue
{
    private readonly List<InputEvent> _events;
    private int _next;

    public InputQueue(IEnumerable<InputEvent> events) => _events = events.ToList();

    public InputEvent? Peek => _next < _events.Count ? _events[_next] : null;
    public int Remaining => _events.Count - _next;
    public void Take() => _next++;

    /// <summary>"Kind at icount" of the next input, for divergence messages.</summary>
    public string DescribeNext() => Peek is { } e ? $"{e.GetType().Name} at {e.Icount}" : "none";
}
