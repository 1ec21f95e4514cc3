using System.Buffers.Binary;
using System.IO.Hashing;

namespace Replayvisor.Engine.State;

/// <summary>
/// The canonical encoding of machine state for hashing: fixed field order, little-endian,
/// fixed widths, no padding; the same state gives the same bytes on every machine and run
/// (DESIGN.md determinism contract 5). Fields stream straight into an XxHash128.
/// </summary>
public sealed class CanonicalWriter
{
    private readonly XxHash128 _hash = new();
    private readonly byte[] _buf = new byte[8];

    public void U8(byte v) { _buf[0] = v; _hash.Append(_buf.AsSpan(0, 1)); }
    public void Bool(bool v) => U8(v ? (byte)1 : (byte)0);
    public void U16(ushort v) { BinaryPrimitives.WriteUInt16LittleEndian(_buf, v); _hash.Append(_buf.AsSpan(0, 2)); }
    public void U32(uint v) { BinaryPrimitives.WriteUInt32LittleEndian(_buf, v); _hash.Append(_buf.AsSpan(0, 4)); }
    public void U64(ulong v) { BinaryPrimitives.WriteUInt64LittleEndian(_buf, v); _hash.Append(_buf.AsSpan(0, 8)); }
    public void I32(int v) => U32((uint)v);
    public void I64(long v) => U64((ulong)v);

    /// <summary>A length-prefixed byte run.</summary>
    public void Bytes(ReadOnlySpan<byte> v) { U32((uint)v.Length); _hash.Append(v); }

    /// <summary>A section tag, so reordered sections cannot collide.</summary>
    public void Tag(string name) { foreach (char c in name) U8((byte)c); U8(0); }

    public byte[] Finish() => _hash.GetCurrentHash();
}

/// <summary>Anything whose state belongs in the machine hash.</summary>
public interface IStateHashable
{
    void WriteState(CanonicalWriter w);
}
