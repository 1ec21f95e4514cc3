using System.Buffers.Binary;
using System.Numerics;

namespace Replayvisor.Engine.Trace;

/// <summary>CRC-32C (Castagnoli), as in iSCSI and ext4; hardware accelerated where the CPU has it.</summary>
internal static class Crc32C
{
    public static uint Compute(ReadOnlySpan<byte> data) => Append(0, data);

    /// <summary>
    /// The CRC-32C of the bytes whose CRC-32C is <paramref name="crc"/> followed by
    /// <paramref name="data"/> (so Append(Compute(a), b) == Compute(a ‖ b)).
    /// </summary>
    public static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        crc = ~crc;
        while (data.Length >= 8)
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }
        foreach (var b in data)
            crc = BitOperations.Crc32C(crc, b);
        return ~crc;
    }
}
