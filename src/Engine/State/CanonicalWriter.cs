using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.CompilerServices;

namespace Replayvisor.Engine.State;

/// <summary>
/// The canonical encoding of machine state for hashing: fixed field order, little-endian,
/// fixed widths, no padding; the same state gives the same bytes on every machine and run
/// (docs/architecture.md, determinism contract 5). The whole encoding (a few hundred KiB) is
/// gathered in one buffer and hashed with XxHash128 in one call at <see cref="Finish"/>: the
/// one-shot hash is about twice as fast as appending to a streaming one, and gives the same
/// value (hashing is done at every checkpoint, so it must be cheap).
/// </summary>
public sealed class CanonicalWriter
{
    private byte[] _buf;
    private int _used;

    /// <param name="scratch">A buffer to gather the encoding in (reused across hashes; it grows as needed, see <see cref="Scratch"/>).</param>
    public CanonicalWriter(byte[]? scratch = null) => _buf = scratch ?? new byte[16 * 1024];

    /// <summary>The buffer the encoding was gathered in, to pass to the next writer.</summary>
    public byte[] Scratch => _buf;

    /// <summary>Bytes of encoding gathered so far.</summary>
    public int Length => _used;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Span<byte> Take(int n)
    {
        if (_used + n > _buf.Length) Grow(n);
        var s = _buf.AsSpan(_used, n);
        _used += n;
        return s;
    }

    private void Grow(int n)
    {
        var bigger = new byte[Math.Max(_buf.Length * 2, _used + n)];
        _buf.AsSpan(0, _used).CopyTo(bigger);
        _buf = bigger;
    }

    /// <summary>
    /// The next <paramref name="n"/> bytes (at most 256) of the encoding, to fill in place: a record
    /// of fixed-width fields written in one piece costs one call instead of one per field.
    /// </summary>
    public Span<byte> Fixed(int n)
    {
        if ((uint)n > 256) throw new ArgumentOutOfRangeException(nameof(n));
        return Take(n);
    }

    public void U8(byte v) => Take(1)[0] = v;
    public void Bool(bool v) => U8(v ? (byte)1 : (byte)0);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void U16(ushort v) => BinaryPrimitives.WriteUInt16LittleEndian(Take(2), v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void U32(uint v) => BinaryPrimitives.WriteUInt32LittleEndian(Take(4), v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void U64(ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(Take(8), v);
    public void I32(int v) => U32((uint)v);
    public void I64(long v) => U64((ulong)v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void U128(UInt128 v) => BinaryPrimitives.WriteUInt128LittleEndian(Take(16), v);

    /// <summary>Bytes with no length prefix (fixed-size fields such as digests).</summary>
    public void Raw(ReadOnlySpan<byte> v) => v.CopyTo(Take(v.Length));

    /// <summary>A length-prefixed byte run.</summary>
    public void Bytes(ReadOnlySpan<byte> v)
    {
        U32((uint)v.Length);
        Raw(v);
    }

    /// <summary>A section tag, so reordered sections cannot collide.</summary>
    public void Tag(string name) { foreach (char c in name) U8((byte)c); U8(0); }

    public byte[] Finish() => XxHash128.Hash(_buf.AsSpan(0, _used));
}

/// <summary>Anything whose state belongs in the machine hash.</summary>
public interface IStateHashable
{
    void WriteState(CanonicalWriter w);
}
