using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Trace;
using Replayvisor.Engine.Session;
using Replayvisor.Record;

namespace Replayvisor.Replay.Tests;

/// <summary>A trace that does not match the guest's behaviour is caught at the event that differs.</summary>
public class TamperTests
{
    private static readonly Lazy<byte[]> Sched = new(() => Recordings.Record("sched", true).Trace);

    [Fact]
    public void ADifferentHypercallResultIsDetectedAtThatEvent()
    {
        HypercallEvent? target = null;
        byte[] bad = Recordings.Rewrite(Sched.Value, e =>
        {
            if (target == null && e is HypercallEvent { Number: 26 } h) { target = h; return h with { Result = h.Result - 1 }; }
            return e;
        });
        Assert.NotNull(target);
        var r = Recordings.Replay(bad);
        Assert.NotNull(r.Divergence);
        Assert.Equal(target!.Icount, r.Divergence!.Icount);
        Assert.Equal(target with { Result = target.Result - 1 }, r.Divergence.Expected);
        Assert.Equal(target, r.Divergence.Actual);
        Assert.Contains("divergence at instruction", r.Report);
    }

    [Fact]
    public void AMovedUpcallIsDetectedWhereItWasRecorded()
    {
        UpcallEvent? moved = null;
        byte[] bad = Recordings.Rewrite(Sched.Value, e =>
        {
            if (moved == null && e is UpcallEvent u) { moved = u; return u with { Icount = u.Icount + 1 }; }
            return e;
        });
        Assert.NotNull(moved);
        var r = Recordings.Replay(bad);
        Assert.NotNull(r.Divergence);
        Assert.Equal(moved!.Icount, r.Divergence!.Icount);
        Assert.IsType<UpcallEvent>(r.Divergence.Actual);
    }

    [Fact]
    public void AChangedCheckpointHashIsDetected()
    {
        CheckpointEvent? changed = null;
        byte[] bad = Recordings.Rewrite(Sched.Value, e =>
        {
            if (changed == null && e is CheckpointEvent c && c.Icount > 10_000_000)
            {
                changed = c;
                byte[] h = c.StateHash.ToArray();
                h[0] ^= 1;
                return c with { StateHash = h };
            }
            return e;
        });
        var r = Recordings.Replay(bad);
        Assert.NotNull(r.Divergence);
        Assert.Equal(changed!.Icount, r.Divergence!.Icount);
    }

    [Fact]
    public void ChangedConsoleInputIsDetectedInTheOutput()
    {
        byte[] trace = Recordings.Record("echo", false).Trace;
        byte[] bad = Recordings.Rewrite(trace, e => e is ConsoleInputEvent c
            ? c with { Bytes = System.Text.Encoding.ASCII.GetBytes(System.Text.Encoding.ASCII.GetString(c.Bytes.AsSpan()).Replace("hello", "HELLO")) }
            : e);
        var r = Recordings.Replay(bad);
        Assert.NotNull(r.Divergence);
        Assert.IsType<ConsoleOutputEvent>(r.Divergence!.Expected);
    }

    private static readonly Lazy<byte[]> SchedHost = new(() => Recordings.Record("sched", false, ClockKind.Host).Trace);
    private static readonly Lazy<byte[]> SchedChaos = new(() => Recordings.Record("sched", true, chaos: 3).Trace);

    /// <summary>Moves one recorded input to another count and checks the replay stops at it, naming both counts.</summary>
    private static void AssertMovedInputIsReported<T>(byte[] trace, Func<T, bool> pick, Func<T, ulong> newIcount) where T : InputEvent
    {
        T? moved = null;
        InputEvent? tampered = null;
        byte[] bad = Recordings.Rewrite(trace, e =>
        {
            if (moved == null && e is T t && pick(t)) { moved = t; tampered = t with { Icount = newIcount(t) }; return tampered; }
            return e;
        });
        Assert.NotNull(moved);
        var r = Recordings.Replay(bad);
        Assert.NotNull(r.Divergence);
        // The replay reached the input where it was really recorded; the trace says another count.
        Assert.Equal(moved!.Icount, r.Divergence!.Icount);
        Assert.Equal(tampered, r.Divergence.Expected);
        Assert.Contains($"input recorded at instruction {tampered!.Icount}; the replay reached it at instruction {moved.Icount}", r.Report);
    }

    [Fact]
    public void AMovedTimeReadIsDetectedAtThatRead()
    {
        // A system-time read after boot (the wallclock values are read once, before the first instruction).
        AssertMovedInputIsReported<TimeEvent>(SchedHost.Value, t => t.Kind == TimeKind.SystemTimeNs && t.Icount > 100_000, t => t.Icount + 1);
    }

    [Fact]
    public void AnEarlierTimeReadIsDetectedAtThatRead()
    {
        AssertMovedInputIsReported<TimeEvent>(SchedHost.Value, t => t.Kind == TimeKind.Tsc && t.Icount > 100_000, t => t.Icount - 1);
    }

    [Fact]
    public void AMovedChaosDelayIsDetectedWhereTheTimerWasArmed()
    {
        AssertMovedInputIsReported<AsyncEvent>(SchedChaos.Value, a => a.Kind == AsyncKind.ChaosDelay && a.Icount > 100_000, a => a.Icount + 3);
    }

    [Fact]
    public void AMovedConsoleInputIsDetectedWhereTheGuestWaitedForIt()
    {
        // The input reached the recording while echo was blocked waiting for it; the trace now says one instruction later.
        AssertMovedInputIsReported<ConsoleInputEvent>(EchoInputWhileBlocked.Value, _ => true, c => c.Icount + 1);
    }

    /// <summary>
    /// An echo recording whose console input arrives only once the guest printed "ready", so it
    /// is injected where the guest blocks waiting for it (no poll falls in between: polls are
    /// 100,000 instructions apart). The gate is the guest's own output, not a timer.
    /// </summary>
    private static readonly Lazy<byte[]> EchoInputWhileBlocked = new(() =>
    {
        using var ready = new ManualResetEventSlim();
        var trace = new MemoryStream();
        using (var s = new LiveSession(new LiveRequest
        {
            Kernel = Guests.Image("echo", false),
            ImageName = "echo.elf",
            Machine = new XenMachineOptions { MemoryMiB = 32 },
            MaxInstructions = 50_000_000,
            CheckpointInterval = 1_000_000,
            Trace = trace,
            ConsoleOutput = new SignalOnText("ready", ready),
            Stdin = new GatedInput(Guests.EchoInput, ready),
        }))
        {
            var result = s.Run();
            Assert.Equal(MachineExitKind.PoweredOff, result.Exit.Kind);
        }
        return trace.ToArray();
    });

    /// <summary>A console sink that sets an event once the guest has printed some text.</summary>
    private sealed class SignalOnText(string text, ManualResetEventSlim seen) : MemoryStream
    {
        public override void Write(byte[] buffer, int offset, int count)
        {
            base.Write(buffer, offset, count);
            if (System.Text.Encoding.ASCII.GetString(ToArray()).Contains(text)) seen.Set();
        }
    }

    /// <summary>stdin that yields its bytes only after the gate opens, then ends.</summary>
    private sealed class GatedInput(byte[] bytes, ManualResetEventSlim gate) : MemoryStream(bytes)
    {
        public override int Read(byte[] buffer, int offset, int count)
        {
            gate.Wait();
            return base.Read(buffer, offset, count);
        }
    }

    [Fact]
    public void AKilledRecorderLeavesAReplayablePrefix()
    {
        byte[] full = Sched.Value;
        using var reader = TraceReader.Open(new MemoryStream(full));
        // Cut inside the last event chunk: the index, footer and the tail are lost, as if the recorder was killed.
        var chunks = reader.Index;
        long cut = chunks[^1].Offset + 10;
        byte[] killed = full.AsSpan(0, (int)cut).ToArray();
        var r = Recordings.Replay(killed);
        Assert.False(r.TraceComplete);
        Assert.Null(r.Divergence);
        Assert.True(r.Exit.Icount > 0);
        Assert.True(r.Exit.Icount <= reader.Summary!.FinalIcount);
    }

    [Fact]
    public void ADamagedChunkIsReportedWithItsOffsetAfterTheEventsBeforeItReplay()
    {
        byte[] full = (byte[])Sched.Value.Clone();
        using var reader = TraceReader.Open(new MemoryStream(Sched.Value));
        long offset = reader.Index[^1].Offset;
        full[offset + 20] ^= 0xFF;
        var r = Recordings.Replay(full);
        // Found while streaming: the events before the damaged chunk are verified, then the damage is reported.
        Assert.Null(r.Divergence);
        Assert.True(r.PrefixOnly);
        Assert.Equal(TraceError.DamagedChunk, r.Damage!.Error);
        Assert.Equal(offset, r.Damage.Offset);
        long checksBefore = reader.Index.Take(reader.Index.Count - 1).SelectMany(reader.ReadChunk).Count(e => e is CheckEvent);
        Assert.Equal(checksBefore, r.EventsVerified);
        Assert.Equal(reader.Index[^2].LastIcount, r.RecordedIcount);
    }
}
