using System.Text;
using Replayvisor.Engine.State;

namespace Replayvisor.Engine.Xen.Xenstore;

/// <summary>
/// The nodes of the model's xenstore: absolute paths ("/local/domain/1/name") to values, each
/// node's children kept in ordinal order (so DIRECTORY answers are the same on every machine).
/// A node's parents always exist; "/" is the root.
/// </summary>
public sealed class XenstoreTree
{
    private readonly SortedDictionary<string, byte[]> _values = new(StringComparer.Ordinal);

    public XenstoreTree() => _values["/"] = [];

    public bool Exists(string path) => _values.ContainsKey(path);

    public byte[]? Read(string path) => _values.TryGetValue(path, out var v) ? v : null;

    /// <summary>Sets a value, creating the node and any missing parents (with empty values).</summary>
    public void Write(string path, byte[] value)
    {
        for (string? p = Parent(path); p != null && !_values.ContainsKey(p); p = Parent(p)) _values[p] = [];
        _values[path] = value;
    }

    /// <summary>Removes a node and everything below it.</summary>
    public void Remove(string path)
    {
        foreach (var p in Below(path).ToList()) _values.Remove(p);
        _values.Remove(path);
    }

    /// <summary>The names of a node's children, in ordinal order.</summary>
    public IEnumerable<string> Children(string path)
    {
        string prefix = path == "/" ? "/" : path + "/";
        foreach (var p in Below(path))
            if (p.IndexOf('/', prefix.Length) < 0) yield return p[prefix.Length..];
    }

    /// <summary>Every node strictly below <paramref name="path"/>, in ordinal order.</summary>
    public IEnumerable<string> Below(string path)
    {
        string prefix = path == "/" ? "/" : path + "/";
        return _values.Keys.Where(p => p.Length > prefix.Length && p.StartsWith(prefix, StringComparison.Ordinal));
    }

    public static string? Parent(string path)
    {
        if (path == "/") return null;
        int slash = path.LastIndexOf('/');
        return slash <= 0 ? "/" : path[..slash];
    }

    public XenstoreTree Clone()
    {
        var t = new XenstoreTree();
        t._values.Clear();
        foreach (var (k, v) in _values) t._values[k] = [.. v];
        return t;
    }

    /// <summary>Every node in path order: path, value.</summary>
    public void WriteState(CanonicalWriter w)
    {
        w.I32(_values.Count);
        foreach (var (k, v) in _values)
        {
            w.Bytes(Encoding.UTF8.GetBytes(k));
            w.Bytes(v);
        }
    }
}
