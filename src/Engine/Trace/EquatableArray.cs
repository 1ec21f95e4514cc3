using System.Collections;
using System.Runtime.CompilerServices;

namespace Replayvisor.Engine.Trace;

/// <summary>
/// An immutable array that compares by content, so trace events (records) holding arrays
/// compare by value: replay checks an expected event against the actual one with ==.
/// <c>default</c> is the empty array.
/// </summary>
[CollectionBuilder(typeof(EquatableArray), nameof(EquatableArray.Create))]
public readonly struct EquatableArray<T> : IEquatable<EquatableArray<T>>, IReadOnlyList<T>
    where T : IEquatable<T>
{
    private readonly T[]? _items;

    /// <summary>Wraps <paramref name="items"/> without copying; the caller must not change it afterwards.</summary>
    public EquatableArray(T[]? items) => _items = items is { Length: > 0 } ? items : null;

    public static EquatableArray<T> Empty => default;
    public int Count => _items?.Length ?? 0;
    public bool IsEmpty => _items is null;
    public T this[int index] => AsSpan()[index];
    public ReadOnlySpan<T> AsSpan() => _items;
    public T[] ToArray() => AsSpan().ToArray();

    public static implicit operator EquatableArray<T>(T[]? items) => new(items);

    public bool Equals(EquatableArray<T> other) => AsSpan().SequenceEqual(other.AsSpan());
    public override bool Equals(object? obj) => obj is EquatableArray<T> other && Equals(other);
    public static bool operator ==(EquatableArray<T> left, EquatableArray<T> right) => left.Equals(right);
    public static bool operator !=(EquatableArray<T> left, EquatableArray<T> right) => !left.Equals(right);

    public override int GetHashCode()
    {
        var hash = new HashCode();
        foreach (var item in AsSpan())
            hash.Add(item);
        return hash.ToHashCode();
    }

    public override string ToString() => $"[{string.Join(", ", _items ?? [])}]";

    public IEnumerator<T> GetEnumerator() => ((IEnumerable<T>)(_items ?? [])).GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>Builder used by collection expressions: <c>EquatableArray&lt;uint&gt; a = [1, 2];</c>.</summary>
public static class EquatableArray
{
    public static EquatableArray<T> Create<T>(ReadOnlySpan<T> items) where T : IEquatable<T> => new(items.ToArray());
}
