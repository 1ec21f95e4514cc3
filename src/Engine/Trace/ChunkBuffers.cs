using System.Buffers;
using System.Numerics;

namespace Replayvisor.Engine.Trace;

/// <summary>
/// The arrays a decoded chunk's rows and values live in (<see cref="ChunkEvents"/>), taken from the
/// runtime's shared array pools and given back by a reader done with the chunk
/// (<see cref="ChunkEvents.ReturnBuffers"/>). A replay reading chunk after chunk then reuses a few of
/// them instead of allocating a full chunk's ~280 KB of fresh large-object memory each time: fresh
/// pages fault in on first touch and the runtime's large-object budget drives full collections
/// (docs/time-travel.md "Streaming"). A pooled array comes back holding an earlier chunk's values:
/// the decoder writes every field of every row that anything reads.
/// </summary>
internal static class ChunkBuffers
{
    /// <summary>Rows for exactly <paramref name="count"/> events (readers bound their loops by the length); pooled when the pool has that size (a power of two, as a full chunk's 4,096).</summary>
    public static ChunkEvents.Row[] Rows(int count, out bool pooled)
    {
        pooled = count >= 1024 && BitOperations.IsPow2(count);
        if (pooled)
        {
            var rows = ArrayPool<ChunkEvents.Row>.Shared.Rent(count);
            if (rows.Length == count) return rows;
            ArrayPool<ChunkEvents.Row>.Shared.Return(rows);
            pooled = false;
        }
        return new ChunkEvents.Row[count];
    }

    /// <summary>Room for at least <paramref name="count"/> values.</summary>
    public static uint[] Values(int count) => ArrayPool<uint>.Shared.Rent(count);

    public static void Return(ChunkEvents.Row[] rows) => ArrayPool<ChunkEvents.Row>.Shared.Return(rows);

    public static void Return(uint[] values) => ArrayPool<uint>.Shared.Return(values);
}
