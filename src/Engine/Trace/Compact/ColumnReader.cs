using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Replayvisor.Engine.Trace.Compact;

/// <summary>Thrown by <see cref="ColumnReader"/> when a column ends early or holds a malformed number.</summary>
internal sealed class CompactFormatException(string message) : Exception(message);

/// <summary>Reads one column of a compact events chunk; every read is bounds-checked.</summary>
internal struct ColumnReader(byte[] buffer, int start, int length, CompactColumn column)
{
    private readonly byte[] _buf = buffer;
    private readonly int _end = start + length;
    private int _at = start;

    public ColumnReader(byte[] buffer, CompactColumn column) : this(buffer, 0, buffer.Length, column) { }

    public readonly bool AtEnd => _at == _end;
    public readonly int Remaining => _end - _at;
    public readonly CompactColumn Column => column;

    private readonly CompactFormatException Short() => new($"column {column} ends early");

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public byte Byte()
    {
        if (_at >= _end) throw Short();
        return _buf[_at++];
    }

    public ReadOnlySpan<byte> Bytes(int n)
    {
        if (n < 0 || n > _end - _at) throw Short();
        var s = _buf.AsSpan(_at, n);
        _at += n;
        return s;
    }

    public ulong U64Le() => BinaryPrimitives.ReadUInt64LittleEndian(Bytes(8));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong Varint()
    {
        // The common case: one byte.
        if (_at < _end && _buf[_at] < 0x80) return _buf[_at++];
        ulong v = 0;
        for (int shift = 0; ; shift += 7)
        {
            byte b = Byte();
            if (shift == 63 && b > 1) throw new CompactFormatException($"column {column}: a varint over 64 bits");
            v |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return v;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public long Signed()
    {
        ulong z = Varint();
        return (long)(z >> 1) ^ -(long)(z & 1);
    }

    /// <summary>A varint that must fit an int32 range [0, max].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Count(int max)
    {
        ulong v = Varint();
        if (v > (ulong)max) throw new CompactFormatException($"column {column}: count {v} is over {max}");
        return (int)v;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint U32()
    {
        ulong v = Varint();
        if (v > uint.MaxValue) throw new CompactFormatException($"column {column}: {v} does not fit 32 bits");
        return (uint)v;
    }

    /// <summary>A varint in [0, int.MaxValue] (a vcpu or vector number).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint U32Signed31() => (uint)Count(int.MaxValue);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int I32()
    {
        long v = Signed();
        if (v is < int.MinValue or > int.MaxValue) throw new CompactFormatException($"column {column}: {v} does not fit 32 bits");
        return (int)v;
    }
}
