using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Replayvisor.Engine.Trace.Compact;

/// <summary>
/// One column being written: bytes, unsigned LEB128 varints and their zigzag forms. A plain array
/// and a length (each write checks the room once), as the recorder writes about ten values per event.
/// </summary>
internal sealed class ColumnBuffer
{
    private byte[] _bytes = new byte[256];
    private int _length;

    public int Length => _length;
    public ReadOnlySpan<byte> Written => _bytes.AsSpan(0, _length);
    public void Clear() => _length = 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Byte(byte v)
    {
        if (_length == _bytes.Length) Grow(1);
        _bytes[_length++] = v;
    }

    public void Bytes(ReadOnlySpan<byte> v)
    {
        if (_bytes.Length - _length < v.Length) Grow(v.Length);
        v.CopyTo(_bytes.AsSpan(_length));
        _length += v.Length;
    }

    public void U64Le(ulong v)
    {
        if (_bytes.Length - _length < 8) Grow(8);
        BinaryPrimitives.WriteUInt64LittleEndian(_bytes.AsSpan(_length), v);
        _length += 8;
    }

    /// <summary>Unsigned LEB128: 7 bits a byte, low first, high bit set on every byte but the last.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Varint(ulong v)
    {
        if (_bytes.Length - _length < 10) Grow(10);
        byte[] bytes = _bytes;
        int n = _length;
        while (v >= 0x80)
        {
            bytes[n++] = (byte)(v | 0x80);
            v >>= 7;
        }
        bytes[n++] = (byte)v;
        _length = n;
    }

    /// <summary>Zigzag (0, −1, 1, −2, … as 0, 1, 2, 3, …) then varint, so small negative numbers stay short.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Signed(long v) => Varint((ulong)((v << 1) ^ (v >> 63)));

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void Grow(int more) => Array.Resize(ref _bytes, Math.Max(_bytes.Length * 2, _length + more));
}
