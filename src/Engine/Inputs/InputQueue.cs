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
    private readonly IInputStream _events;

    public InputQueue(IEnumerable<InputEvent> events) => _events = new ListStream(events.ToList());

    /// <summary>A queue over inputs read on demand (a replay streaming a trace chunk by chunk).</summary>
    public InputQueue(IInputStream events) => _events = events;

    public InputEvent? Peek => _events.Peek;
    public void Take() => _events.Take();

    /// <summary>"Kind at icount" of the next input, for divergence messages.</summary>
    public string DescribeNext() => Peek is { } e ? $"{e.GetType().Name} at {e.Icount}" : "none";
}

/// <summary>Recorded inputs in file order, read on demand.</summary>
public interface IInputStream
{
    /// <summary>The next input, or null when there are no more.</summary>
    InputEvent? Peek { get; }

    /// <summary>Moves past <see cref="Peek"/>.</summary>
    void Take();
}

internal sealed class ListStream(List<InputEvent> events) : IInputStream
{
    private int _next;
    public InputEvent? Peek => _next < events.Count ? events[_next] : null;
    public void Take() => _next++;
}
