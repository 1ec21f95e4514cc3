using Replayvisor.Engine.Xen.Mm;
using static Replayvisor.Engine.Tests.Xen.Mm.MmFixture;

namespace Replayvisor.Engine.Tests.Xen.Mm;

/// <summary>
/// MemoryManager.PeekGuest32 (the recorder's call-site reads) remembers the page it walked last and
/// re-reads that walk's entries instead of walking again: its answer must be the walk's after any
/// change of any entry the walk depends on, made straight into RAM with no TLB flush, and after a
/// switch of the root table.
/// </summary>
public class PeekWalkMemoTests
{
    private static uint? Walk(MmFixture f, uint va) =>
        GuestPageWalk.TranslateRead(f.Fmt, f.Mm.CurrentBaseMfn, va, out ulong pa) ? f.Domain.Memory.Read32(pa) : null;

    private static void WriteEntry(MmFixture f, ulong at, ulong value)
    {
        if (f.Pae) f.Domain.Memory.Write64(at, value);
        else f.Domain.Memory.Write32(at, (uint)value);
    }

    /// <summary>A copy of table frame <paramref name="from"/> in <paramref name="to"/>.</summary>
    private static void CopyFrame(MmFixture f, uint from, uint to) =>
        f.Domain.Memory.WriteBytes((ulong)to << 12, f.Domain.Memory.FrameBytes(from));

    [Theory, InlineData(false), InlineData(true)]
    public void EveryEntryTheWalkReadIsCheckedAgain(bool pae)
    {
        var f = new MmFixture(pae);
        uint va = f.SpareVa(0) + 0x123 * 4;
        uint a = f.FreeMfn(0), b = f.FreeMfn(1);
        f.Domain.Memory.Write32(((ulong)a << 12) + (va & 0xFFF), 0xAAAA0001);
        f.Domain.Memory.Write32(((ulong)b << 12) + (va & 0xFFF), 0xBBBB0002);
        Assert.Equal(0, f.Uvm(va & ~0xFFFu, f.Entry(a, P | RW | A), Uvmf.TlbFlush | Uvmf.All));
        Assert.Equal(0xAAAA0001u, f.Mm.PeekGuest32(va));
        Assert.Equal(0xAAAA0001u, f.Mm.PeekGuest32(va)); // remembered

        // The L1 entry, rewritten in RAM (no hypercall, no flush): another frame, then not present.
        ulong l1e = f.L1eMaddr(va);
        WriteEntry(f, l1e, f.Entry(b, P | RW | A));
        Assert.Equal(0xBBBB0002u, f.Mm.PeekGuest32(va));
        WriteEntry(f, l1e, f.Entry(b, RW | A));
        Assert.Null(f.Mm.PeekGuest32(va));
        WriteEntry(f, l1e, f.Entry(a, P | RW | A));
        Assert.Equal(0xAAAA0001u, f.Mm.PeekGuest32(va));

        // The L2 entry: to a copy of the L1 table that maps the page to b, then a superpage (never followed).
        ulong l2e = f.L2eMaddr(va);
        ulong oldL2e = f.ReadEntryAt(l2e);
        uint l1Copy = f.FreeMfn(2);
        CopyFrame(f, (uint)f.Fmt.Mfn(oldL2e), l1Copy);
        WriteEntry(f, ((ulong)l1Copy << 12) + (ulong)(f.Fmt.L1Index(va) * f.PteSize), f.Entry(b, P | RW | A));
        WriteEntry(f, l2e, f.Entry(l1Copy, oldL2e & 0xFFF));
        Assert.Equal(0xBBBB0002u, f.Mm.PeekGuest32(va));
        WriteEntry(f, l2e, oldL2e | 0x80);
        Assert.Null(f.Mm.PeekGuest32(va));
        WriteEntry(f, l2e, oldL2e);
        Assert.Equal(0xAAAA0001u, f.Mm.PeekGuest32(va));

        if (pae)
        {
            // The L3 entry: to a copy of the L2 table whose entry leads to the L1 copy (page → b).
            ulong l3e = ((ulong)f.Mm.CurrentBaseMfn << 12) + (va >> 30) * 8;
            ulong oldL3e = f.ReadEntryAt(l3e);
            uint l2Copy = f.FreeMfn(3);
            CopyFrame(f, (uint)f.Fmt.Mfn(oldL3e), l2Copy);
            WriteEntry(f, ((ulong)l2Copy << 12) + (ulong)(f.Fmt.L2Index(va) * 8), f.Entry(l1Copy, oldL2e & 0xFFF));
            WriteEntry(f, l3e, f.Entry(l2Copy, oldL3e & 0xFFF));
            Assert.Equal(0xBBBB0002u, f.Mm.PeekGuest32(va));
            WriteEntry(f, l3e, oldL3e);
            Assert.Equal(0xAAAA0001u, f.Mm.PeekGuest32(va));
        }

        // Another root table (a copy whose path leads to b): the same page, another answer.
        uint root = f.Mm.CurrentBaseMfn, rootCopy = f.FreeMfn(4);
        CopyFrame(f, root, rootCopy);
        if (pae)
        {
            uint l2Copy = f.FreeMfn(3);
            WriteEntry(f, ((ulong)rootCopy << 12) + (va >> 30) * 8, f.Entry(l2Copy, f.ReadEntryAt(((ulong)root << 12) + (va >> 30) * 8) & 0xFFF));
        }
        else WriteEntry(f, ((ulong)rootCopy << 12) + (ulong)(f.Fmt.L2Index(va) * 4), f.Entry(l1Copy, oldL2e & 0xFFF));
        f.Mm.Restore(f.Mm.Snapshot() with { BaseMfn = rootCopy });
        Assert.Equal(0xBBBB0002u, f.Mm.PeekGuest32(va));
        Assert.Equal(Walk(f, va), f.Mm.PeekGuest32(va));
        f.Mm.Restore(f.Mm.Snapshot() with { BaseMfn = root });
        Assert.Equal(0xAAAA0001u, f.Mm.PeekGuest32(va));
    }

    [Theory, InlineData(false, 1), InlineData(true, 2), InlineData(false, 3), InlineData(true, 4)]
    public void RandomEntryChangesAndReadsGiveTheWalksAnswer(bool pae, int seed)
    {
        var f = new MmFixture(pae);
        var rng = new Random(seed);
        uint[] pages = [f.SpareVa(0), f.SpareVa(1)];
        uint[] frames = [f.FreeMfn(0), f.FreeMfn(1), f.FreeMfn(2)];
        for (int i = 0; i < frames.Length; i++)
            for (uint o = 0; o < 4096; o += 4) f.Domain.Memory.Write32(((ulong)frames[i] << 12) + o, (uint)(i << 24) | o);
        foreach (uint p in pages) Assert.Equal(0, f.Uvm(p, f.Entry(frames[0], P | RW | A), Uvmf.TlbFlush | Uvmf.All));
        var l1es = pages.Select(f.L1eMaddr).ToArray();
        ulong l2e = f.L2eMaddr(pages[0]), l2Original = f.ReadEntryAt(l2e);
        for (int step = 0; step < 5_000; step++)
        {
            switch (rng.Next(6))
            {
                case 0: // an L1 entry: another frame, not present, or a frame past the end of RAM
                    ulong flags = rng.Next(4) == 0 ? RW | A : P | RW | A;
                    uint mfn = rng.Next(10) == 0 ? f.Domain.Memory.FrameCount + 5 : frames[rng.Next(frames.Length)];
                    WriteEntry(f, l1es[rng.Next(l1es.Length)], f.Entry(mfn, flags));
                    break;
                case 1: // the L2 entry: back, not present, or a superpage
                    WriteEntry(f, l2e, rng.Next(3) switch { 0 => l2Original & ~P, 1 => l2Original | 0x80, _ => l2Original });
                    break;
                default: // reads, in both pages, at the last word too (some announced by a prefetch, which changes nothing)
                    uint va = pages[rng.Next(pages.Length)] + (uint)rng.Next(1024) * 4;
                    if (rng.Next(2) == 0) f.Mm.PrefetchPeek32(rng.Next(8) == 0 ? (uint)rng.NextInt64(1L << 32) : va);
                    Assert.Equal(Walk(f, va), f.Mm.PeekGuest32(va));
                    break;
            }
        }
    }
}
