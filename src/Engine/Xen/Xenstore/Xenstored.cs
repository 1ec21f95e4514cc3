using System.Text;
using Replayvisor.Engine.State;

namespace Replayvisor.Engine.Xen.Xenstore;

/// <summary>
/// A small deterministic xenstored for the one domain the model runs (docs/xen-model.md,
/// "xenstore"), following tools/xenstore's C daemon for what a guest can observe: READ,
/// DIRECTORY, WRITE, MKDIR, RM, WATCH/UNWATCH (an event at once, then one per change at or below
/// the path), TRANSACTION_START/END (applied at once: with one client nothing can conflict),
/// GET_DOMAIN_PATH, GET_PERMS/SET_PERMS. The guest reads and writes its home
/// /local/domain/DOMID, made relative paths resolve against it, and nothing else (EACCES).
/// Every answer follows from the requests, which come from guest memory, and the initial tree,
/// which comes from the domain's configuration: a replay recomputes the same answers.
/// </summary>
public sealed class Xenstored
{
    private XenstoreTree _tree;
    private List<(string Path, string Token)> _watches = [];
    private uint _nextTransaction = 1;
    private HashSet<uint> _transactions = [];
    private readonly string _home;
    private readonly ushort _domid;

    public Xenstored(ushort domid, IEnumerable<(string RelativePath, string Value)> initial)
    {
        _domid = domid;
        _home = $"/local/domain/{domid}";
        _tree = new XenstoreTree();
        _tree.Write(_home, []);
        foreach (var (rel, value) in initial) _tree.Write(Join(rel), Encoding.ASCII.GetBytes(value));
    }

    /// <summary>A request changed a node (the tree is then hashed; untouched stores keep older hashes).</summary>
    public bool TreeChanged { get; private set; }

    /// <summary>The state differs from the one built from the domain's configuration.</summary>
    public bool Touched => TreeChanged || _watches.Count > 0 || _nextTransaction != 1 || _transactions.Count > 0;

    public XenstoreTree Tree => _tree;

    /// <summary>Answers one request: the reply, preceded (writes) or followed (WATCH) by watch events.</summary>
    public List<XsMessage> Handle(XsMessage req)
    {
        var outq = new List<XsMessage>();
        string? error = Dispatch(req, outq);
        if (error != null) outq.Add(Reply(req, XsWire.Error, error + "\0"));
        return outq;
    }

    private string? Dispatch(XsMessage req, List<XsMessage> outq)
    {
        if (req.TxId != 0 && !_transactions.Contains(req.TxId)) return "ENOENT";
        var args = Strings(req.Payload);
        switch (req.Type)
        {
            case XsWire.Read:
            {
                if (OneArg(args, req.Payload) is not { } p || Resolve(p) is not { } path) return "EINVAL";
                if (!Allowed(path)) return "EACCES";
                if (_tree.Read(path) is not { } v) return "ENOENT";
                outq.Add(Reply(req, req.Type, v));
                return null;
            }
            case XsWire.Directory:
            {
                if (OneArg(args, req.Payload) is not { } p || Resolve(p) is not { } path) return "EINVAL";
                if (!Allowed(path)) return "EACCES";
                if (!_tree.Exists(path)) return "ENOENT";
                var sb = new StringBuilder();
                foreach (var c in _tree.Children(path)) sb.Append(c).Append('\0');
                outq.Add(Reply(req, req.Type, sb.ToString()));
                return null;
            }
            case XsWire.Write:
            {
                int nul = Array.IndexOf(req.Payload, (byte)0);
                if (nul < 0 || Resolve(Encoding.ASCII.GetString(req.Payload, 0, nul)) is not { } path) return "EINVAL";
                if (!Allowed(path)) return "EACCES";
                TreeChanged = true;
                _tree.Write(path, req.Payload[(nul + 1)..]);
                Fire(path, outq);
                outq.Add(Ok(req));
                return null;
            }
            case XsWire.Mkdir:
            {
                if (OneArg(args, req.Payload) is not { } p || Resolve(p) is not { } path) return "EINVAL";
                if (!Allowed(path)) return "EACCES";
                if (!_tree.Exists(path))
                {
                    TreeChanged = true;
                    _tree.Write(path, []);
                    Fire(path, outq);
                }
                outq.Add(Ok(req));
                return null;
            }
            case XsWire.Rm:
            {
                if (OneArg(args, req.Payload) is not { } p || Resolve(p) is not { } path) return "EINVAL";
                if (!Allowed(path) || path == _home) return "EACCES";
                if (!_tree.Exists(path))
                    return XenstoreTree.Parent(path) is { } parent && _tree.Exists(parent) ? Acked(req, outq) : "ENOENT";
                TreeChanged = true;
                var gone = _tree.Below(path).ToList();
                _tree.Remove(path);
                Fire(path, outq, gone);
                outq.Add(Ok(req));
                return null;
            }
            case XsWire.Watch:
            {
                if (args.Count != 2 || !EndsWithNul(req.Payload)) return "EINVAL";
                string path = args[0], token = args[1];
                if (!path.StartsWith('@') && Resolve(path) is null) return "EINVAL";
                if (_watches.Contains((path, token))) return "EEXIST";
                _watches.Add((path, token));
                outq.Add(Ok(req));
                outq.Add(Event(path, token)); // "We fire once up front" (xenstored_watch.c do_watch)
                return null;
            }
            case XsWire.Unwatch:
            {
                if (args.Count != 2 || !EndsWithNul(req.Payload)) return "EINVAL";
                if (!_watches.Remove((args[0], args[1]))) return "ENOENT";
                outq.Add(Ok(req));
                return null;
            }
            case XsWire.TransactionStart:
            {
                if (req.TxId != 0) return "EBUSY";
                uint id = _nextTransaction++;
                _transactions.Add(id);
                outq.Add(Reply(req, req.Type, $"{id}\0"));
                return null;
            }
            case XsWire.TransactionEnd:
            {
                if (req.TxId == 0) return "ENOENT";
                if (OneArg(args, req.Payload) is not ("T" or "F")) return "EINVAL";
                _transactions.Remove(req.TxId);
                outq.Add(Ok(req));
                return null;
            }
            case XsWire.GetDomainPath:
            {
                if (OneArg(args, req.Payload) is not { } d || !ushort.TryParse(d, out var domid) || d != domid.ToString()) return "EINVAL";
                outq.Add(Reply(req, req.Type, $"/local/domain/{domid}\0"));
                return null;
            }
            case XsWire.GetPerms:
            {
                if (OneArg(args, req.Payload) is not { } p || Resolve(p) is not { } path) return "EINVAL";
                if (!Allowed(path)) return "EACCES";
                if (!_tree.Exists(path)) return "ENOENT";
                outq.Add(Reply(req, req.Type, $"n{_domid}\0")); // owner: the domain; others: none
                return null;
            }
            case XsWire.SetPerms:
            {
                if (args.Count < 1 || Resolve(args[0]) is not { } path) return "EINVAL";
                if (!Allowed(path)) return "EACCES";
                if (!_tree.Exists(path)) return "ENOENT";
                outq.Add(Ok(req)); // permissions are not modelled: the domain is the only client
                return null;
            }
            case XsWire.Control: case XsWire.Introduce: case XsWire.Release: case XsWire.IsDomainIntroduced:
            case XsWire.Resume: case XsWire.SetTarget: case XsWire.ResetWatches:
                return "EACCES"; // toolstack operations: dom0 only
            default:
                return "EINVAL";
        }
    }

    private string? Acked(XsMessage req, List<XsMessage> outq)
    {
        outq.Add(Ok(req));
        return null;
    }

    /// <summary>Watch events for a change at <paramref name="path"/> (and, for RM, the nodes removed below it).</summary>
    private void Fire(string path, List<XsMessage> outq, List<string>? removed = null)
    {
        foreach (var (wpath, token) in _watches)
        {
            if (wpath.StartsWith('@') || Resolve(wpath) is not { } abs) continue;
            bool relative = !wpath.StartsWith('/');
            if (abs == path || IsBelow(path, abs)) outq.Add(Event(relative ? Relative(path) : path, token));
            else if (removed != null && (removed.Contains(abs))) outq.Add(Event(wpath, token));
        }
    }

    private static bool IsBelow(string path, string ancestor) =>
        ancestor == "/" ? path != "/" : path.StartsWith(ancestor + "/", StringComparison.Ordinal);

    private string Relative(string abs) => abs.Length > _home.Length ? abs[(_home.Length + 1)..] : abs;

    private static XsMessage Event(string path, string token) =>
        new(XsWire.WatchEvent, 0, 0, Encoding.ASCII.GetBytes($"{path}\0{token}\0"));

    private static XsMessage Ok(XsMessage req) => Reply(req, req.Type, "OK\0");

    private static XsMessage Reply(XsMessage req, uint type, string payload) => Reply(req, type, Encoding.ASCII.GetBytes(payload));

    private static XsMessage Reply(XsMessage req, uint type, byte[] payload) => new(type, req.ReqId, req.TxId, payload);

    private bool Allowed(string path) => path == _home || path.StartsWith(_home + "/", StringComparison.Ordinal);

    private string Join(string rel) => rel.Length == 0 ? _home : _home + "/" + rel;

    /// <summary>An absolute path, or null when the name is not valid (xenstored's is_valid_nodename).</summary>
    private string? Resolve(string name)
    {
        bool absolute = name.StartsWith('/');
        if (name.Length == 0 || name.Length > (absolute ? XsWire.AbsPathMax : XsWire.RelPathMax)) return null;
        string path = absolute ? name : Join(name);
        if (path != "/" && (path.EndsWith('/') || path.Contains("//", StringComparison.Ordinal))) return null;
        foreach (char c in path)
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '/' or '_' or '@')) return null;
        return path;
    }

    /// <summary>The payload split at NULs (a final unterminated piece included).</summary>
    private static List<string> Strings(byte[] payload)
    {
        var list = new List<string>();
        int start = 0;
        for (int i = 0; i < payload.Length; i++)
            if (payload[i] == 0) { list.Add(Encoding.ASCII.GetString(payload, start, i - start)); start = i + 1; }
        if (start < payload.Length) list.Add(Encoding.ASCII.GetString(payload, start, payload.Length - start));
        return list;
    }

    private static bool EndsWithNul(byte[] payload) => payload.Length > 0 && payload[^1] == 0;

    /// <summary>Exactly one NUL-terminated string (xenstored's onearg), else null.</summary>
    private static string? OneArg(List<string> args, byte[] payload) =>
        args.Count == 1 && EndsWithNul(payload) ? args[0] : null;

    public XenstoredSnapshot Snapshot() => new(_tree.Clone(), [.. _watches], _nextTransaction, [.. _transactions], TreeChanged);

    public void Restore(XenstoredSnapshot s)
    {
        _tree = s.Tree.Clone();
        _watches = [.. s.Watches];
        _nextTransaction = s.NextTransaction;
        _transactions = [.. s.Transactions];
        TreeChanged = s.TreeChanged;
    }

    /// <summary>Tree, watches (registration order) and open transactions; written only once requests changed them (<see cref="Touched"/>).</summary>
    public void WriteState(CanonicalWriter w)
    {
        if (!Touched) return;
        w.Tag("xenstore");
        _tree.WriteState(w);
        w.I32(_watches.Count);
        foreach (var (p, t) in _watches) { w.Bytes(Encoding.ASCII.GetBytes(p)); w.Bytes(Encoding.ASCII.GetBytes(t)); }
        w.U32(_nextTransaction);
        w.I32(_transactions.Count);
        foreach (uint t in _transactions.Order()) w.U32(t);
    }
}

/// <summary>A deep copy of <see cref="Xenstored"/>'s state.</summary>
public sealed record XenstoredSnapshot(XenstoreTree Tree, (string Path, string Token)[] Watches, uint NextTransaction, uint[] Transactions, bool TreeChanged);
