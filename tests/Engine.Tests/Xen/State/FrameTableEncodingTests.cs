using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Xen.Mm;

namespace Replayvisor.Engine.Tests.Xen.State;

/// <summary>
/// The frame table keeps its canonical encoding between state hashes and encodes again only the
/// entries marked changed: every way an entry changes must mark it, or a hash would carry a stale entry.
/// </summary>
public class FrameTableEncodingTests
{
    public static TheoryData<string> Changes() => [.. ChangeTable.Keys];

    private static FrameTable Frames(XenMachine m) => m.Mm.Frames;

    private static readonly Dictionary<string, Action<XenMachine>> ChangeTable = new()
    {
        ["assign"] = m => Frames(m).Assign(TickerGuest.FreeMfn(m, 9), FrameOwner.Xen),
        ["get page"] = m => Assert.True(Frames(m).GetPage(TickerGuest.FreeMfn(m, 5), FrameOwner.Domain)),
        ["put page"] = m => Frames(m).PutPage(TickerGuest.FreeMfn(m, 0)),
        ["get type"] = m => Assert.True(Frames(m).GetType(TickerGuest.FreeMfn(m, 5), PageType.Writable)),
        ["get page and type"] = m => Assert.True(Frames(m).GetPageAndType(TickerGuest.FreeMfn(m, 6), FrameOwner.Domain, PageType.Writable)),
        ["put type (devalidates the pinned L1)"] = m => Frames(m).PutType(TickerGuest.FreeMfn(m, 0)),
        ["linear ref"] = m => Assert.True(Frames(m).GetLinearRef(TickerGuest.FreeMfn(m, 0), PageType.L1)),
        ["set pinned"] = m => Assert.True(Frames(m).TrySetPinned(TickerGuest.FreeMfn(m, 5))),
        ["clear pinned"] = m => Assert.True(Frames(m).TryClearPinned(TickerGuest.FreeMfn(m, 0))),
        ["restore"] = m =>
        {
            var frames = Frames(m).Snapshot();
            frames[TickerGuest.FreeMfn(m, 8)].RefCount += 3;
            Frames(m).Restore(frames);
        },
        ["unpin by hypercall"] = m =>
        {
            uint args = XenTestGuest.Scratch + 0x800;
            XenTestGuest.Write32(m, args, MmuextCmd.UnpinTable);
            XenTestGuest.Write32(m, args + 4, TickerGuest.FreeMfn(m, 0));
            XenTestGuest.Write32(m, args + 8, 0);
            Assert.Equal(0, m.Hypervisor.Call(26, new Replayvisor.Engine.Xen.HypercallArgs(args, 1, 0, DomId.Self, 0, 0)));
        },
    };

    [Theory, MemberData(nameof(Changes))]
    public void EveryChangeToAnEntryIsEncodedAgain(string what)
    {
        var m = TickerGuest.Machine();
        TickerGuest.Decorate(m);
        Assert.Equal(MachineExitKind.InstructionLimit, m.Run(150_000).Kind);
        byte[] before = m.StateHash(); // every entry encoded and clean
        Assert.Empty(Frames(m).StaleCleanEntries());
        var entries = Frames(m).Snapshot();

        ChangeTable[what](m);

        Assert.NotEqual(entries, Frames(m).Snapshot()); // the change reached the table
        Assert.Empty(Frames(m).StaleCleanEntries());
        byte[] after = m.StateHash();
        Assert.NotEqual(before, after);
        Assert.Empty(Frames(m).StaleCleanEntries());
        // A machine restored from this one encodes every entry afresh: the same hash.
        var fresh = TickerGuest.Machine();
        fresh.Restore(m.Snapshot());
        Assert.Equal(after, fresh.StateHash());
    }

    [Fact]
    public void AGuestRunBetweenHashesLeavesNoStaleEntry()
    {
        var m = TickerGuest.Machine();
        TickerGuest.Decorate(m);
        for (int i = 0; i < 4; i++)
        {
            m.StateHash();
            Assert.Equal(MachineExitKind.InstructionLimit, m.Run(m.Icount + 60_000).Kind);
            Assert.Empty(Frames(m).StaleCleanEntries());
        }
        var fresh = TickerGuest.Machine();
        fresh.Restore(m.Snapshot());
        Assert.Equal(fresh.StateHash(), m.StateHash());
    }
}
