using Replayvisor.Engine.Xen;
using Replayvisor.Engine.Xen.Hypercalls;

namespace Replayvisor.Engine.Tests.Xen;

public class HypercallOutputCaptureTests
{
    [Fact]
    public void WritesAreSplitAtTheEdgesOfTheDeclaredBuffers()
    {
        var c = new HypercallOutputCapture();
        c.Declare(new GuestRange(0x1000, 0x10));
        c.Declare(new GuestRange(0x2000, 4));
        List<GuestWriteRecord> inside = [], outside = [];
        c.Split([new(0x100C, [1, 2, 3, 4, 5, 6, 7, 8]), new(0x2000, [9, 9, 9, 9]), new(0x0FFF, [7, 7])], inside, outside);
        Assert.Equal([(0x100Cu, "01020304"), (0x2000u, "09090909"), (0x1000u, "07")], inside.Select(w => (w.Address, Convert.ToHexString(w.Bytes))));
        Assert.Equal([(0x1010u, "05060708"), (0x0FFFu, "07")], outside.Select(w => (w.Address, Convert.ToHexString(w.Bytes))));
    }

    [Fact]
    public void TheDigestCoversAddressesAndBytesAndIsZeroForNothing()
    {
        Assert.Equal(0ul, HypercallOutputCapture.Digest([]));
        ulong a = HypercallOutputCapture.Digest([new(0x1000, [1, 2])]);
        Assert.NotEqual(0ul, a);
        Assert.Equal(a, HypercallOutputCapture.Digest([new(0x1000, [1, 2])]));
        Assert.NotEqual(a, HypercallOutputCapture.Digest([new(0x1000, [1, 3])]));
        Assert.NotEqual(a, HypercallOutputCapture.Digest([new(0x1001, [1, 2])]));
        Assert.NotEqual(a, HypercallOutputCapture.Digest([new(0x1000, [1]), new(0x1001, [2])]));
    }

    [Fact]
    public void EveryWrittenBufferOfTheTableIsResolvable()
    {
        // A written buffer either has a fixed shape (count argument or one element) or a resolver: never an unresolved "varies".
        foreach (var row in HypercallTable.Instance.Rows)
            foreach (var b in row.Memory.Where(b => b.Written))
                Assert.True(b.Resolve != null || b.CountArg != GuestBuffer.Varies, $"{row.Name}: {b.Type}");
    }
}
