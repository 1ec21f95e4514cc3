using System.Text;
using Replayvisor.Engine.State;
using Replayvisor.Engine.Xen.Xenstore;
using Xunit;

namespace Replayvisor.Engine.Tests.Xen;

/// <summary>The model's xenstored, message by message (docs/xen-model.md "xenstore"; Xen's public/io/xs_wire.h).</summary>
public class XenstoredTests
{
    private static Xenstored Daemon() => new(1, [("domid", "1"), ("name", "guest"), ("console/port", "2"), ("device", "")]);

    private static XsMessage Req(uint type, string payload, uint reqId = 7, uint tx = 0) =>
        new(type, reqId, tx, Encoding.ASCII.GetBytes(payload));

    private static string Text(XsMessage m) => Encoding.ASCII.GetString(m.Payload);

    private static XsMessage One(Xenstored d, XsMessage req)
    {
        var r = Assert.Single(d.Handle(req));
        Assert.Equal(req.ReqId, r.ReqId);
        Assert.Equal(req.TxId, r.TxId);
        return r;
    }

    private static void Error(Xenstored d, XsMessage req, string errno)
    {
        var r = One(d, req);
        Assert.Equal(XsWire.Error, r.Type);
        Assert.Equal(errno + "\0", Text(r));
    }

    [Fact]
    public void ReadsAbsoluteAndRelativePathsOfTheDomainsHome()
    {
        var d = Daemon();
        var r = One(d, Req(XsWire.Read, "/local/domain/1/name\0"));
        Assert.Equal(XsWire.Read, r.Type);
        Assert.Equal("guest", Text(r));                                // a value carries no NUL
        Assert.Equal("2", Text(One(d, Req(XsWire.Read, "console/port\0"))));
        Assert.Equal("console\0device\0domid\0name\0", Text(One(d, Req(XsWire.Directory, "/local/domain/1\0"))));
        Assert.Equal("", Text(One(d, Req(XsWire.Directory, "device\0"))));
        Assert.False(d.Touched);
    }

    [Fact]
    public void ErrorsAreXenstoredsErrnoNames()
    {
        var d = Daemon();
        Error(d, Req(XsWire.Read, "device/vbd\0"), "ENOENT");
        Error(d, Req(XsWire.Directory, "device/vbd\0"), "ENOENT");
        Error(d, Req(XsWire.Read, "/local/domain/0/name\0"), "EACCES");
        Error(d, Req(XsWire.Write, "/tool/x\0v"), "EACCES");
        Error(d, Req(XsWire.Read, "bad//path\0"), "EINVAL");
        Error(d, Req(XsWire.Read, "name/\0"), "EINVAL");
        Error(d, Req(XsWire.Read, "na me\0"), "EINVAL");
        Error(d, Req(XsWire.Read, "name"), "EINVAL");                 // not NUL-terminated
        Error(d, Req(XsWire.Introduce, "0\0 1\0 2\0"), "EACCES");
        Error(d, Req(99, ""), "EINVAL");
        Error(d, Req(XsWire.Read, "name\0", tx: 5), "ENOENT");         // no such transaction
    }

    [Fact]
    public void WritesCreateParentsAndRmRemovesSubtrees()
    {
        var d = Daemon();
        Assert.Equal("OK\0", Text(One(d, Req(XsWire.Write, "data/a/b\0hello"))));
        Assert.True(d.Touched);
        Assert.Equal("hello", Text(One(d, Req(XsWire.Read, "data/a/b\0"))));
        Assert.Equal("", Text(One(d, Req(XsWire.Read, "data/a\0"))));
        Assert.Equal("OK\0", Text(One(d, Req(XsWire.Mkdir, "data/c\0"))));
        Assert.Equal("a\0c\0", Text(One(d, Req(XsWire.Directory, "data\0"))));
        Assert.Equal("OK\0", Text(One(d, Req(XsWire.Rm, "data/a\0"))));
        Error(d, Req(XsWire.Read, "data/a/b\0"), "ENOENT");
        Assert.Equal("OK\0", Text(One(d, Req(XsWire.Rm, "data/zz\0"))));   // the parent exists: acknowledged
        Error(d, Req(XsWire.Rm, "data/zz/yy\0"), "ENOENT");
        Error(d, Req(XsWire.Rm, "/local/domain/1\0"), "EACCES");
    }

    [Fact]
    public void AWatchFiresAtOnceThenForChangesAtOrBelowItsPath()
    {
        var d = Daemon();
        var w = d.Handle(Req(XsWire.Watch, "control\0tok\0"));
        Assert.Equal(2, w.Count);
        Assert.Equal("OK\0", Text(w[0]));
        Assert.Equal(XsWire.WatchEvent, w[1].Type);
        Assert.Equal("control\0tok\0", Text(w[1]));                   // a relative watch reports relative paths

        var changed = d.Handle(Req(XsWire.Write, "control/shutdown\0poweroff"));
        Assert.Equal(2, changed.Count);
        Assert.Equal("control/shutdown\0tok\0", Text(changed[0]));     // the event comes before the reply
        Assert.Equal(XsWire.Write, changed[1].Type);

        Assert.Single(d.Handle(Req(XsWire.Write, "data/x\0v")));       // elsewhere: the reply only
        var abs = d.Handle(Req(XsWire.Watch, "/local/domain/1/data\0t2\0"));
        Assert.Equal("/local/domain/1/data\0t2\0", Text(abs[1]));
        var rm = d.Handle(Req(XsWire.Rm, "data\0"));
        Assert.Equal("/local/domain/1/data\0t2\0", Text(rm[0]));
        Error(d, Req(XsWire.Watch, "control\0tok\0"), "EEXIST");
        Assert.Equal("OK\0", Text(One(d, Req(XsWire.Unwatch, "control\0tok\0"))));
        Assert.Single(d.Handle(Req(XsWire.Write, "control/shutdown\0reboot")));
        Error(d, Req(XsWire.Unwatch, "control\0tok\0"), "ENOENT");
    }

    [Fact]
    public void TransactionsNumberFromOneAndEnd()
    {
        var d = Daemon();
        Assert.Equal("1\0", Text(One(d, Req(XsWire.TransactionStart, "\0"))));
        Assert.Equal("OK\0", Text(One(d, Req(XsWire.Write, "data/t\0in", tx: 1))));
        Assert.Equal("OK\0", Text(One(d, Req(XsWire.TransactionEnd, "T\0", tx: 1))));
        Error(d, Req(XsWire.TransactionEnd, "T\0", tx: 1), "ENOENT");
        Assert.Equal("2\0", Text(One(d, Req(XsWire.TransactionStart, "\0"))));
        Assert.Equal("/local/domain/3\0", Text(One(d, Req(XsWire.GetDomainPath, "3\0"))));
        Assert.Equal("n1\0", Text(One(d, Req(XsWire.GetPerms, "name\0"))));
    }

    [Fact]
    public void TheStateIsHashedOnlyOnceARequestChangedIt()
    {
        static byte[] Hash(Xenstored d)
        {
            var w = new CanonicalWriter();
            d.WriteState(w);
            return w.Finish();
        }
        byte[] nothing = new CanonicalWriter().Finish();
        var d = Daemon();
        d.Handle(Req(XsWire.Read, "name\0"));
        Assert.Equal(nothing, Hash(d));
        var before = d.Snapshot();
        d.Handle(Req(XsWire.Write, "data/x\0v"));
        byte[] after = Hash(d);
        Assert.NotEqual(nothing, after);
        d.Restore(before);
        Assert.Equal(nothing, Hash(d));
        d.Handle(Req(XsWire.Write, "data/x\0v"));
        Assert.Equal(after, Hash(d));
    }
}
