using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Replayvisor.Engine.Trace.Compact;

/// <summary>One column being written: bytes, unsigned LEB128 varints and their zigzag forms.</summary>
internal sealed class ColumnBuffer
{
    private readonly ArrayBufferWriter<byte> _bytes = new(256);

    public int Length => _bytes.WrittenCount;
    public ReadOnlySpan<byte> Written => _bytes.WrittenSpan;
    public void Clear() => _bytes.ResetWrittenCount();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Byte(byte v)
    {
        _bytes.GetSpan(1)[0] = v;
        _bytes.Advance(1);
    }

    public void Bytes(ReadOnlySpan<byte> v) => _bytes.Write(v);

    public void U64Le(ulong v)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(_bytes.GetSpan(8), v);
        _bytes.Advance(8);
    }

    /// <summary>Unsigned LEB128: 7 bits a byte, low first, high bit set on every byte but the last.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Varint(ulong v)
    {
        var span = _bytes.GetSpan(10);
        int n = 0;
        while (v >= 0x80)
        {
            span[n++] = (byte)(v | 0x80);
            v >>= 7;
        }
        span[n++] = (byte)v;
        _bytes.Advance(n);
    }

    /// <summary>Zigzag (0, −1, 1, −2, … as 0, 1, 2, 3, …) then varint, so small negative numbers stay short.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Signed(long v) => Varint((ulong)((v << 1) ^ (v >> 63)));
}
