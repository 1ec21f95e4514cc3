using System.Diagnostics;
using Replayvisor.Engine.Inputs;

namespace Replayvisor.Record;

/// <summary>
/// The host's clocks for <see cref="RecordingClock"/> (`record --clock host`): a monotonic
/// stopwatch, UTC, and a real-time wait that <see cref="Wake"/> ends early.
/// </summary>
public sealed class HostClock : IHostTime, IDisposable
{
    private readonly Stopwatch _sw = Stopwatch.StartNew();
    private readonly ManualResetEventSlim _wake = new(false);

    public ulong MonotonicNs() => (ulong)(_sw.ElapsedTicks * (1_000_000_000.0 / Stopwatch.Frequency));

    public (uint Sec, uint Nsec) UtcNow()
    {
        var utc = DateTimeOffset.UtcNow;
        return ((uint)utc.ToUnixTimeSeconds(), (uint)(utc.Ticks % TimeSpan.TicksPerSecond * 100));
    }

    /// <summary>Called before a wait of 10 ms or more (the recorder writes its pending events first).</summary>
    public Action? BeforeLongWait { get; set; }

    public bool Wait(ulong ns)
    {
        int ms = ns >= 1_000_000_000 ? 1000 : (int)Math.Max(1, ns / 1_000_000);
        if (ms >= 10) BeforeLongWait?.Invoke();
        if (!_wake.Wait(ms)) return false;
        _wake.Reset();
        return true;
    }

    /// <summary>Ends an idle wait early (an input arrived, or a stop was requested).</summary>
    public void Wake() => _wake.Set();

    public void Dispose() => _wake.Dispose();
}
