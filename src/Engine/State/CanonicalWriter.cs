using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.CompilerServices;

namespace Replayvisor.Engine.State;

/// <summary>
/// The canonical encoding of machine state for hashing: fixed field order, little-endian,
/// fixed widths, no padding; the same state gives the same bytes on every machine and run
/// (docs/architecture.md, determinism contract 5). The small fields are gathered in one buffer
/// and hashed with XxHash128 in one call at <see cref="Finish"/>: the one-shot hash is about twice
/// as fast as appending each field to a streaming one, and gives the same value (hashing is done at
/// every checkpoint, so it must be cheap). Large runs kept elsewhere (the cached per-frame hashes,
/// the frame table's encoding) are hashed where they lie by <see cref="RawInPlace"/>: the
/// buffer so far and the run go to a streaming hash, which gives the hash of the same bytes
/// gathered in one piece (XXH3's streaming and one-shot forms agree), without copying the run.
/// Encodings over 240 bytes (every machine's) are hashed by <see cref="LongXxHash128"/>, compiled
/// optimised from its first call; shorter ones by System.IO.Hashing (the same values).
/// </summary>
public sealed class CanonicalWriter
{
    private byte[] _buf;
    private int _used, _peak;
    /// <summary>The encoding before the buffer's bytes, once a run was hashed in place; null until then.</summary>
    private LongXxHash128? _stream;
    private long _streamed;

    /// <param name="scratch">A buffer to gather the encoding in (reused across hashes; it grows as needed, see <see cref="Scratch"/>).</param>
    public CanonicalWriter(byte[]? scratch = null) => _buf = scratch ?? new byte[16 * 1024];

    /// <summary>The buffer the encoding was gathered in, to pass to the next writer.</summary>
    public byte[] Scratch => _buf;

    /// <summary>Bytes of encoding so far (gathered in the buffer or hashed in place).</summary>
    public long Length => _streamed + _used;

    /// <summary>The most bytes the buffer held at once (what a buffer for the next encoding of the same state needs).</summary>
    public int Peak => Math.Max(_peak, _used);

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

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void U8(byte v) => Take(1)[0] = v;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Bool(bool v) => U8(v ? (byte)1 : (byte)0);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void U16(ushort v) => BinaryPrimitives.WriteUInt16LittleEndian(Take(2), v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void U32(uint v) => BinaryPrimitives.WriteUInt32LittleEndian(Take(4), v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void U64(ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(Take(8), v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void I32(int v) => U32((uint)v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void I64(long v) => U64((ulong)v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void U128(UInt128 v) => BinaryPrimitives.WriteUInt128LittleEndian(Take(16), v);

    /// <summary>Bytes with no length prefix (fixed-size fields such as digests).</summary>
    public void Raw(ReadOnlySpan<byte> v) => v.CopyTo(Take(v.Length));

    /// <summary>Runs at least this long are hashed in place by <see cref="RawInPlace"/>; shorter ones are copied.</summary>
    public const int InPlaceMin = 4096;

    /// <summary>
    /// As <see cref="Raw"/> (the same hash), for a large run that stays where it is: the bytes are
    /// hashed now, not copied, so <paramref name="v"/> may change as soon as this returns.
    /// </summary>
    public void RawInPlace(ReadOnlySpan<byte> v)
    {
        if (v.Length < InPlaceMin)
        {
            Raw(v);
            return;
        }
        _stream ??= new LongXxHash128(); // the stream is over 4096 bytes long: XXH3's long form
        _stream.Append(_buf.AsSpan(0, _used));
        _peak = Peak;
        _streamed += _used + v.Length;
        _used = 0;
        _stream.Append(v);
    }

    /// <summary>A length-prefixed byte run.</summary>
    public void Bytes(ReadOnlySpan<byte> v)
    {
        U32((uint)v.Length);
        Raw(v);
    }

    /// <summary>A section tag, so reordered sections cannot collide.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Tag(string name) { foreach (char c in name) U8((byte)c); U8(0); }

    /// <summary>XxHash128 of the encoding (System.IO.Hashing's value and byte order).</summary>
    public byte[] Finish()
    {
        if (_stream == null)
            return _used > LongXxHash128.MinLengthExclusive
                ? LongXxHash128.ToBytes(LongXxHash128.Hash(_buf.AsSpan(0, _used)))
                : XxHash128.Hash(_buf.AsSpan(0, _used));
        _stream.Append(_buf.AsSpan(0, _used));
        return LongXxHash128.ToBytes(_stream.Finish());
    }
}

/// <summary>Anything whose state belongs in the machine hash.</summary>
public interface IStateHashable
{
    void WriteState(CanonicalWriter w);
}
