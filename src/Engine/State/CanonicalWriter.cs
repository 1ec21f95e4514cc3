using System.Buffers.Binary;
using System.IO.Hashing;

namespace Replayvisor.Engine.State;

/// <summary>
/// The canonical encoding of machine state for hashing: fixed field order, little-endian,
/// fixed widths, no padding; the same state gives the same bytes on every machine and run
/// (docs/architecture.md, determinism contract 5). Fields are gathered in a buffer and streamed into an
/// XxHash128 in large pieces (hashing is done at every checkpoint, so it must be cheap).
/// </summary>
public sealed class CanonicalWriter
{
    private readonly XxHash128 _hash = new();
    private readonly byte[] _buf = new byte[16 * 1024];
    private int _used;

    private Span<byte> Take(int n)
    {
        if (_used + n > _buf.Length) Flush();
        var s = _buf.AsSpan(_used, n);
        _used += n;
        return s;
    }

    private void Flush()
    {
        _hash.Append(_buf.AsSpan(0, _used));
        _used = 0;
    }

    public void U8(byte v) => Take(1)[0] = v;
    public void Bool(bool v) => U8(v ? (byte)1 : (byte)0);
    public void U16(ushort v) => BinaryPrimitives.WriteUInt16LittleEndian(Take(2), v);
    public void U32(uint v) => BinaryPrimitives.WriteUInt32LittleEndian(Take(4), v);
    public void U64(ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(Take(8), v);
    public void I32(int v) => U32((uint)v);
    public void I64(long v) => U64((ulong)v);
    public void U128(UInt128 v) => BinaryPrimitives.WriteUInt128LittleEndian(Take(16), v);

    /// <summary>Bytes with no length prefix (fixed-size fields such as digests).</summary>
    public void Raw(ReadOnlySpan<byte> v)
    {
        if (v.Length > _buf.Length / 2)
        {
            Flush();
            _hash.Append(v);
            return;
        }
        v.CopyTo(Take(v.Length));
    }

    /// <summary>A length-prefixed byte run.</summary>
    public void Bytes(ReadOnlySpan<byte> v)
    {
        U32((uint)v.Length);
        Raw(v);
    }

    /// <summary>A section tag, so reordered sections cannot collide.</summary>
    public void Tag(string name) { foreach (char c in name) U8((byte)c); U8(0); }

    public byte[] Finish()
    {
        Flush();
        return _hash.GetCurrentHash();
    }
}

/// <summary>Anything whose state belongs in the machine hash.</summary>
public interface IStateHashable
{
    void WriteState(CanonicalWriter w);
}
