using Replayvisor.Engine.Xen;

namespace Replayvisor.Engine.Tests.Xen;

/// <summary>
/// <see cref="HypercallArgs.AsSpan"/> views the registers where they lie: the replay compares that
/// view with the recorded arguments as blocks (Trace/ColumnCursor.cs), so it must be the six registers
/// in order and follow the value it views.
/// </summary>
public sealed class HypercallArgsTests
{
    [Fact]
    public void TheSpanIsTheSixRegistersInOrder()
    {
        var args = new HypercallArgs(0xb1, 0xc2, 0xd3, 0x5e, 0xd1, 0xbb);
        Assert.Equal([0xb1u, 0xc2, 0xd3, 0x5e, 0xd1, 0xbb], HypercallArgs.AsSpan(in args).ToArray());
        for (int i = 0; i < 6; i++) Assert.Equal(args[i], HypercallArgs.AsSpan(in args)[i]);
    }

    [Fact]
    public void TheSpanViewsTheValueNotACopy()
    {
        var box = new HypercallArgs[] { new(1, 2, 3, 4, 5, 6) };
        var view = HypercallArgs.AsSpan(in box[0]);
        box[0] = box[0] with { A6 = 60 };
        Assert.Equal(60u, view[5]);
    }
}
