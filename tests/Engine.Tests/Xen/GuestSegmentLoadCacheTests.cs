using Replayvisor.Engine.Cpu;
using static Replayvisor.Engine.Tests.Xen.ReturnLoadMemoTests;

namespace Replayvisor.Engine.Tests.Xen;

/// <summary>
/// The guest's own segment loads (mov/pop to DS, ES, FS, GS, SS: X86Cpu.LoadSegment) are answered by
/// the selector cache Xen's return path uses. Two identical machines take the same random GDT, GDTR
/// and TLB changes and the same loads at ring 1 and ring 3, one through the cache and one in full:
/// every load must succeed or fault alike and leave the same segment, and the machines end alike.
/// </summary>
public class GuestSegmentLoadCacheTests
{
    private static readonly int[] Segments = [Seg.DS, Seg.ES, Seg.FS, Seg.GS, Seg.SS];

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void CachedGuestLoadsEqualTheFullLoads(int seed)
    {
        var (on, off, frames) = Pair();
        var r = new Random(seed);
        int loaded = 0;
        ushort sel = 0;
        int seg = Seg.DS, cpl = 1;
        for (int step = 0; step < 20_000; step++)
        {
            Mutate(r, on, off, frames);
            // Mostly a load repeated (what the cache is for), sometimes another selector, register or ring.
            if (step == 0 || r.Next(4) == 0)
            {
                seg = Segments[r.Next(Segments.Length)];
                sel = Selector(r, seg == Seg.SS ? 5 : 0);
                cpl = r.Next(3) == 0 ? 3 : 1;
            }
            on.Cpu.Cpl = off.Cpu.Cpl = cpl;
            bool okOn = on.Cpu.LoadSegment(seg, sel), okOff = off.Cpu.LoadSegment(seg, sel);
            Assert.Equal(okOff, okOn);
            Assert.Equal(off.Cpu.PendingEvent.Vector, on.Cpu.PendingEvent.Vector);
            Assert.Equal(off.Cpu.PendingEvent.ErrorCode, on.Cpu.PendingEvent.ErrorCode);
            Assert.Equal(off.Cpu.Segs[seg], on.Cpu.Segs[seg]);
            if (okOn) loaded++;
            on.Cpu.ClearFault();
            off.Cpu.ClearFault();
        }
        Assert.True(loaded > 1000, $"only {loaded} loads succeeded");
        Assert.True(on.Cpu.SegmentLoads!.Hits > loaded / 4, $"the cache answered {on.Cpu.SegmentLoads.Hits} of {loaded}");
        Assert.Null(off.Cpu.SegmentLoads);
        on.Cpu.Cpl = off.Cpu.Cpl = 1;
        Assert.Equal(off.StateHash(), on.StateHash());
    }
}
