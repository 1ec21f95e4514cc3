using Replayvisor.Engine.Memory;

namespace Replayvisor.Engine.Tests.Memory;

/// <summary>Page snapshots share unchanged pages and restore exactly, without confusing the state hash's dirty tracking.</summary>
public class RamPagesTests
{
    [Fact]
    public void UnchangedPagesAreSharedAndRestoresPutEveryByteBack()
    {
        var m = new PhysicalMemory(64);
        m.Write32(0x1000, 0xDEADBEEF);
        var a = m.CapturePages();
        m.Write32(0x3004, 0x12345678);
        var b = m.CapturePages();
        Assert.True(a.Frame(1) == b.Frame(1), "frame 1 was not written between the captures");
        Assert.False(a.Frame(3) == b.Frame(3), "frame 3 was");
        Assert.True(a.Frame(5) == b.Frame(5));
        m.Write32(0x1000, 7);
        m.RestorePages(a);
        Assert.Equal(0xDEADBEEFu, m.Read32(0x1000));
        Assert.Equal(0u, m.Read32(0x3004));
        m.RestorePages(b);
        Assert.Equal(0x12345678u, m.Read32(0x3004));
        Assert.Empty(m.StaleCleanFrames());
    }

    [Fact]
    public void TheStateHashSeesWritesThatAPageCaptureAlreadyConsumed()
    {
        var m = new PhysicalMemory(16);
        var w = new State.CanonicalWriter();
        m.WriteState(w);
        byte[] before = w.Finish();
        m.Write8(0x2000, 1);
        m.CapturePages(); // consumes the dirty mark
        var w2 = new State.CanonicalWriter();
        m.WriteState(w2);
        Assert.NotEqual(before, w2.Finish());
        Assert.Empty(m.StaleCleanFrames());
        // And a capture after a hash still sees a write the hash consumed.
        var p1 = m.CapturePages();
        m.Write8(0x2001, 2);
        m.WriteState(new State.CanonicalWriter());
        var p2 = m.CapturePages();
        Assert.False(p1.Frame(2) == p2.Frame(2));
    }
}
