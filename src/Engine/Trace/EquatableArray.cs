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

    /// <summary>The empty array (the same as <c>default</c>).</summary>
    public static EquatableArray<T> Empty => default;
    /// <summary>The number of items.</summary>
    public int Count => _items?.Length ?? 0;
    /// <summary>True when there are no items.</summary>
    public bool IsEmpty => _items is null;
    /// <summary>The item at <paramref name="index"/>.</summary>
    public T this[int index] => AsSpan()[index];
    /// <summary>The items, without copying.</summary>
    public ReadOnlySpan<T> AsSpan() => _items;
    /// <summary>A copy of the items.</summary>
    public T[] ToArray() => AsSpan().ToArray();

    /// <summary>Wraps <paramref name="items"/> without copying.</summary>
    public static implicit operator EquatableArray<T>(T[]? items) => new(items);

    /// <summary>True when both hold equal items in the same order.</summary>
    public bool Equals(EquatableArray<T> other) => AsSpan().SequenceEqual(other.AsSpan());
    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is EquatableArray<T> other && Equals(other);
    /// <summary>Compares by content.</summary>
    public static bool operator ==(EquatableArray<T> left, EquatableArray<T> right) => left.Equals(right);
    /// <summary>Compares by content.</summary>
    public static bool operator !=(EquatableArray<T> left, EquatableArray<T> right) => !left.Equals(right);

    /// <summary>A hash of the content.</summary>
    public override int GetHashCode()
    {
        var hash = new HashCode();
        foreach (var item in AsSpan())
            hash.Add(item);
        return hash.ToHashCode();
    }

    /// <summary>The items as <c>[a, b, c]</c>.</summary>
    public override string ToString() => $"[{string.Join(", ", _items ?? [])}]";

    /// <summary>Enumerates the items.</summary>
    public IEnumerator<T> GetEnumerator() => ((IEnumerable<T>)(_items ?? [])).GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>Builder used by collection expressions: <c>EquatableArray&lt;uint&gt; a = [1, 2];</c>.</summary>
public static class EquatableArray
{
    /// <summary>An array holding a copy of <paramref name="items"/>.</summary>
    public static EquatableArray<T> Create<T>(ReadOnlySpan<T> items) where T : IEquatable<T> => new(items.ToArray());
}
