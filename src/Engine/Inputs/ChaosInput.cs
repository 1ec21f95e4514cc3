using Replayvisor.Engine.Trace;

namespace Replayvisor.Engine.Inputs;

/// <summary>The seeded random numbers chaos mode draws from (src/Record supplies System.Random; the engine has no randomness of its own).</summary>
public interface IChaosSource
{
    /// <summary>A number in [0, maxExclusive).</summary>
    int Next(int maxExclusive);

    /// <summary>A number in [minInclusive, maxExclusive).</summary>
    int Next(int minInclusive, int maxExclusive);
}

/// <summary>
/// Chaos mode (`record --chaos SEED`), record half: legal but unusual timing. A timer interrupt
/// reaches the guest late (never early) by a drawn delay, logged as an <see cref="AsyncEvent"/>
/// of kind <see cref="AsyncKind.ChaosDelay"/>; console input is held back for a while, as a slow
/// terminal or backend would (the console input source logs when it finally enters).
/// </summary>
public sealed class ChaosRecorder
{
    private readonly IChaosSource _random;
    private readonly Action<TraceEvent>? _log;

    public ChaosRecorder(IChaosSource random, Action<TraceEvent>? log)
    {
        _random = random;
        _log = log;
    }

    /// <summary>The extra instructions by which the timer armed at <paramref name="icount"/> is delivered late.</summary>
    public ulong TimerDelay(ulong icount)
    {
        ulong delay = _random.Next(8) == 0 ? (ulong)_random.Next(1, 2_000_000) : (ulong)_random.Next(0, 20_000);
        _log?.Invoke(new AsyncEvent(icount, AsyncKind.ChaosDelay, 0, delay));
        return delay;
    }

    /// <summary>True when pending console input waits for a later poll (never while the vCPU is blocked on it).</summary>
    public bool HoldsInputBack(bool blocked) => !blocked && _random.Next(4) != 0;
}

/// <summary>
/// Chaos mode, replay half: each timer arming takes its recorded delay, which must have been
/// recorded at the same instruction count.
/// </summary>
public sealed class ChaosReplayer
{
    private readonly InputQueue _queue;
    private readonly Action<string> _diverged;

    public ChaosReplayer(InputQueue queue, Action<string> diverged)
    {
        _queue = queue;
        _diverged = diverged;
    }

    public ulong TimerDelay(ulong icount)
    {
        if (_queue.Peek is AsyncEvent { Kind: AsyncKind.ChaosDelay } a)
        {
            // Checked before it is taken, so the report names this delay as the expected input.
            if (a.Icount != icount) _diverged($"a timer was armed at instruction {icount}; the recording armed it at {a.Icount}");
            _queue.Take();
            return a.Arg;
        }
        _diverged($"a timer was armed at instruction {icount} but the recording has no chaos delay here (next input: {_queue.DescribeNext()})");
        return 0;
    }
}
