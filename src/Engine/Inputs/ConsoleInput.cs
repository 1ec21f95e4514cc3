using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Trace;

namespace Replayvisor.Engine.Inputs;

/// <summary>
/// Console input, record half: bytes that arrived from the host (src/Record reads stdin) enter the
/// guest at an instruction boundary and are logged there as a <see cref="ConsoleInputEvent"/>.
/// </summary>
public sealed class ConsoleInputRecorder
{
    private readonly Action<TraceEvent>? _log;

    public ConsoleInputRecorder(Action<TraceEvent>? log) => _log = log;

    /// <summary>Where in the run loop input enters now.</summary>
    public static ConsoleInputSite SiteOf(XenMachine machine, bool whileWaiting) =>
        whileWaiting ? ConsoleInputSite.Waiting : machine.IsSleeping ? ConsoleInputSite.BlockedPoll : ConsoleInputSite.Poll;

    /// <summary>Bytes of console input injected so far.</summary>
    public long InjectedBytes { get; private set; }

    /// <summary>Logs <paramref name="bytes"/> at the machine's instruction count and hands them to the guest.</summary>
    /// <param name="whileWaiting">True when the machine was waiting for input (IRunInputs.WaitForInput), false at a poll.</param>
    public void Inject(XenMachine machine, byte[] bytes, bool whileWaiting = false)
    {
        _log?.Invoke(new ConsoleInputEvent(machine.Icount, bytes, SiteOf(machine, whileWaiting)));
        InjectedBytes += bytes.Length;
        machine.PushConsoleInput(bytes);
    }
}

/// <summary>
/// Console input, replay half: each recorded <see cref="ConsoleInputEvent"/> enters the guest at
/// the instruction count it was recorded at.
/// </summary>
public sealed class ConsoleInputReplayer
{
    private readonly InputQueue _queue;
    private readonly Action<string> _diverged;

    /// <summary>A format-1 trace: its console input does not say where it entered.</summary>
    public bool Legacy { get; set; }

    public ConsoleInputReplayer(InputQueue queue, Action<string> diverged)
    {
        _queue = queue;
        _diverged = diverged;
    }

    /// <summary>The count (≥ icount) at which the next recorded input is due; ulong.MaxValue when the next input is not console input.</summary>
    public ulong NextPoll(ulong icount) => _queue.Peek is ConsoleInputEvent c ? Math.Max(c.Icount, icount) : ulong.MaxValue;

    /// <summary>Injects the next recorded input if it is due at the machine's count.</summary>
    public bool Poll(XenMachine machine)
    {
        // Input enters at the same kind of poll as it did when recorded (format 1 traces did not say: the first poll at its count).
        if (_queue.Peek is not ConsoleInputEvent c || c.Icount != machine.Icount) return false;
        if (!Legacy && c.Site != ConsoleInputRecorder.SiteOf(machine, whileWaiting: false)) return false;
        _queue.Take();
        machine.PushConsoleInput(c.Bytes.AsSpan());
        return true;
    }

    /// <summary>The guest is blocked waiting for input: the recording must deliver it right here.</summary>
    public bool WaitForInput(XenMachine machine)
    {
        if (_queue.Peek is not ConsoleInputEvent c) return false;
        if (c.Icount != machine.Icount)
            _diverged($"the guest waits for input at instruction {machine.Icount}; the recording delivered input at {c.Icount}");
        _queue.Take();
        machine.PushConsoleInput(c.Bytes.AsSpan());
        return true;
    }
}
