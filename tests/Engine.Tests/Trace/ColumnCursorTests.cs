using Replayvisor.Engine.Trace;
using Replayvisor.Engine.Trace.Compact;

namespace Replayvisor.Engine.Tests.Trace;

/// <summary>
/// <see cref="ColumnCursor"/>: a produced hypercall or upcall is taken only when every field equals the
/// recorded row (the block compares cover each field: the count, result, digest, site and number
/// block, the vCPU, the kind, each of the six arguments and their number), and a take moves to the
/// chunk's next check past any inputs, leaving the chunk after its last.
/// </summary>
public sealed class ColumnCursorTests
{
    private static readonly uint[] Args = [0x11111111, 0x22222222, 0x33333333, 0x44444444, 0x55555555, 0x66666666];

    private static readonly HypercallEvent Call = new(1000, 29, Args, -38, OutputDigest: 0x0123456789abcdef, Site: 0xc0101234) { Vcpu = 1 };
    private static readonly UpcallEvent Up = new(1500, 1, [3, 700]) { Eip = 0xc0105678, Handler = 0xc0100040 };

    /// <summary>The call, an input, the upcall, a check object, an input, a second call: decoded as columns.</summary>
    private static ChunkEvents Chunk()
    {
        var encoder = new CompactEventEncoder();
        foreach (var e in new TraceEvent[]
        {
            Call, new TimeEvent(1200, TimeKind.SystemTimeNs, 77), Up, new ExceptionEvent(1600, 14, 2, 0x1000, 0xc0100000),
            new TimeEvent(1700, TimeKind.SystemTimeNs, 78), Call with { Icount = 1800 },
        })
            encoder.Add(e);
        return CompactEventDecoder.DecodeColumns(encoder.Finish());
    }

    private static ColumnCursor At(ChunkEvents chunk, int index, bool enabled = true) => new() { At = chunk, Index = index, Enabled = enabled };

    private static bool TakeCall(ColumnCursor c, HypercallEvent h) => c.TakeHypercall(h.Icount, h.Vcpu, h.Number, h.Args.AsSpan(), h.Result, h.OutputDigest, h.Site);

    private static uint[] With(uint[] values, int index, uint xor)
    {
        var copy = values.ToArray();
        copy[index] ^= xor;
        return copy;
    }

    public static TheoryData<string> CallChanges => new(
        "icount", "result", "digest", "site", "number", "vcpu", "arg0", "arg1", "arg2", "arg3", "arg4", "arg5", "five args", "seven args", "high result");

    private static HypercallEvent Changed(string what) => what switch
    {
        "icount" => Call with { Icount = Call.Icount + 1 },
        "result" => Call with { Result = Call.Result + 1 },
        "high result" => Call with { Result = Call.Result ^ (1L << 40) },
        "digest" => Call with { OutputDigest = Call.OutputDigest ^ (1UL << 63) },
        "site" => Call with { Site = Call.Site ^ 1 },
        "number" => Call with { Number = Call.Number ^ 0x100 },
        "vcpu" => Call with { Vcpu = 0 },
        "five args" => Call with { Args = Args[..5] },
        "seven args" => Call with { Args = [.. Args, 0] },
        _ => Call with { Args = With(Args, what[3] - '0', 0x80000000) },
    };

    [Theory]
    [MemberData(nameof(CallChanges))]
    public void AHypercallDifferingInOneFieldIsNotTakenAndNothingMoves(string what)
    {
        var c = At(Chunk(), 0);
        Assert.False(TakeCall(c, Changed(what)));
        Assert.Equal(0, c.Index);
        Assert.Equal(0, c.Taken);
        Assert.True(TakeCall(c, Call)); // the recorded values themselves are taken
    }

    [Fact]
    public void TakingMovesPastInputsToTheNextCheckAndLeavesTheChunkAfterItsLast()
    {
        var chunk = Chunk();
        int left = 0;
        var c = At(chunk, 0);
        c.Left = () => left++;
        Assert.True(TakeCall(c, Call));
        Assert.Equal((2, 1L), (c.Index, c.Taken)); // past the input at 1
        Assert.False(TakeCall(c, Call)); // the upcall's row
        Assert.True(c.TakeUpcall(Up.Icount, Up.Vcpu, Up.Ports.AsSpan(), Up.Eip, Up.Handler));
        Assert.Equal((3, 2L), (c.Index, c.Taken));
        // A check held as an object is not taken here (the caller compares the event).
        Assert.False(c.TakeUpcall(1600, 0, [], 0, 0));
        Assert.False(c.TakeHypercall(1600, 0, 0, [], 0, 0, 0));
        c.Index = 5;
        Assert.Equal(0, left);
        Assert.True(TakeCall(c, Call with { Icount = 1800 }));
        Assert.Equal((6, 3L, 1), (c.Index, c.Taken, left));
        Assert.Null(c.At);
        Assert.False(TakeCall(c, Call with { Icount = 1800 }));
    }

    [Fact]
    public void AnUpcallDifferingInOneFieldIsNotTaken()
    {
        var c = At(Chunk(), 2);
        Assert.False(c.TakeUpcall(Up.Icount + 1, Up.Vcpu, Up.Ports.AsSpan(), Up.Eip, Up.Handler));
        Assert.False(c.TakeUpcall(Up.Icount, 0, Up.Ports.AsSpan(), Up.Eip, Up.Handler));
        Assert.False(c.TakeUpcall(Up.Icount, Up.Vcpu, [3, 701], Up.Eip, Up.Handler));
        Assert.False(c.TakeUpcall(Up.Icount, Up.Vcpu, [3], Up.Eip, Up.Handler));
        Assert.False(c.TakeUpcall(Up.Icount, Up.Vcpu, Up.Ports.AsSpan(), Up.Eip ^ 1, Up.Handler));
        Assert.False(c.TakeUpcall(Up.Icount, Up.Vcpu, Up.Ports.AsSpan(), Up.Eip, Up.Handler ^ 1));
        Assert.False(c.TakeHypercall(Up.Icount, Up.Vcpu, (int)Up.Handler, Up.Ports.AsSpan(), 0, 0, Up.Eip));
        Assert.Equal((2, 0L), (c.Index, c.Taken));
    }

    /// <summary>
    /// A row holds six values itself; a longer list (an upcall with many pending ports, a hypercall
    /// recorded with more arguments) is held in the chunk's values array, and a list of another length
    /// is never taken for it, whichever of the two holds it.
    /// </summary>
    [Fact]
    public void ListsLongerThanARowHoldsAreComparedInFull()
    {
        uint[] ports = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        uint[] args = [.. Args, 0x77777777];
        var up = new UpcallEvent(1000, 0, ports) { Eip = 0xc0105678, Handler = 0xc0100040 };
        var call = Call with { Icount = 1100, Args = args };
        var shortUp = new UpcallEvent(1200, 0, ports[..6]) { Eip = 0xc0105678, Handler = 0xc0100040 };
        var encoder = new CompactEventEncoder();
        foreach (var e in new TraceEvent[] { up, call, shortUp, Call with { Icount = 1300 } }) encoder.Add(e);
        var chunk = CompactEventDecoder.DecodeColumns(encoder.Finish());
        Assert.Equal(new TraceEvent[] { up, call, shortUp, Call with { Icount = 1300 } }, chunk.ToArray());

        var c = At(chunk, 0);
        Assert.False(c.TakeUpcall(up.Icount, 0, ports[..6], up.Eip, up.Handler));
        Assert.False(c.TakeUpcall(up.Icount, 0, [.. ports, 10], up.Eip, up.Handler));
        Assert.False(c.TakeUpcall(up.Icount, 0, With(ports, 8, 0x100), up.Eip, up.Handler));
        Assert.False(c.TakeUpcall(up.Icount, 0, With(ports, 0, 0x100), up.Eip, up.Handler));
        Assert.True(c.TakeUpcall(up.Icount, 0, ports, up.Eip, up.Handler));
        Assert.False(TakeCall(c, call with { Args = Args }));
        Assert.False(TakeCall(c, call with { Args = With(args, 6, 1) }));
        Assert.True(TakeCall(c, call));
        Assert.False(c.TakeUpcall(shortUp.Icount, 0, ports[..5], shortUp.Eip, shortUp.Handler));
        Assert.False(c.TakeUpcall(shortUp.Icount, 0, ports[..7], shortUp.Eip, shortUp.Handler));
        Assert.False(c.TakeUpcall(shortUp.Icount, 0, With(ports[..6], 5, 0x100), shortUp.Eip, shortUp.Handler));
        Assert.True(c.TakeUpcall(shortUp.Icount, 0, ports[..6], shortUp.Eip, shortUp.Handler));
        Assert.True(TakeCall(c, Call with { Icount = 1300 }));
        Assert.Equal(4L, c.Taken);
    }

    [Fact]
    public void NothingIsTakenWhileDisabledOrWhenTheChunkIsNotHeldAsColumns()
    {
        var chunk = Chunk();
        var c = At(chunk, 0, enabled: false);
        Assert.False(TakeCall(c, Call));
        c.Enabled = true;
        Assert.True(TakeCall(c, Call));
        c.At = chunk.ToList(); // the same events as objects
        c.Index = 0;
        Assert.False(TakeCall(c, Call));
        c.At = null;
        Assert.False(TakeCall(c, Call));
    }
}
