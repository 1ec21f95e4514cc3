using System.Buffers;
using System.Runtime.InteropServices;
using Replayvisor.Engine.Trace;
using Replayvisor.Engine.Trace.Compact;

namespace Replayvisor.Engine.Tests.Trace;

/// <summary>
/// <see cref="ChunkBuffers"/>: a full chunk decodes into pooled rows and values that come back holding
/// an earlier chunk's bytes, so the decoder must write every field of every row. A chunk of every kind
/// decoded into arrays filled with one pattern, then into the same arrays filled with another, gives
/// the same rows and values, and the same events as the MessagePack-free reference decode.
/// </summary>
public sealed class ChunkBuffersTests
{
    private const int Count = 4096;

    private static byte[] Payload()
    {
        var encoder = new CompactEventEncoder();
        for (int i = 0; i < Count; i++)
        {
            ulong icount = 1000 + (ulong)i * 10;
            encoder.Add((i % 9) switch
            {
                5 => new UpcallEvent(icount, 1, [1, 2, 3, 4, 5, 6, 7, (uint)i]) { Eip = 0xc0105678, Handler = 0xc0100040 },
                6 => new HypercallEvent(icount, 13, [1, 2, 3, 4, 5, 6, (uint)i], 0, [new MulticallEntry(29, 0)], Site: 0xc0101234),
                7 => new HypercallEvent(icount, 3, [(uint)i, 9], 1, Site: 0xc0101234),
                0 => new HypercallEvent(icount, 29, [1, 2, (uint)i, 4, 5, 6], -38, OutputDigest: 0x0123456789abcdef, Site: 0xc0101234),
                1 => new UpcallEvent(icount, 0, [3, (uint)i]) { Eip = 0xc0105678, Handler = 0xc0100040 },
                2 => new TimeEvent(icount, TimeKind.SystemTimeNs, (ulong)i),
                3 => new ExceptionEvent(icount, 14, 2, 0x1000, 0xc0100000),
                4 => new HypercallEvent(icount, 24, [7, (uint)i, 0, 0, 0, 0], 0, Site: 0xc0104321),
                _ => new UpcallEvent(icount, 0, [(uint)i, 1, 2, 3, 4, 5, 6, 7, 8, 9]) { Eip = 0xc0105678, Handler = 0xc0100040 },
            });
        }
        return encoder.Finish();
    }

    /// <summary>Fills a pooled rows array and a values array with <paramref name="pattern"/> and gives them back, so the next decode on this thread takes them.</summary>
    private static (ChunkEvents.Row[] Rows, uint[] Values) Poison(byte pattern, int values)
    {
        var rows = ArrayPool<ChunkEvents.Row>.Shared.Rent(Count);
        MemoryMarshal.AsBytes(rows.AsSpan()).Fill(pattern);
        var vals = ArrayPool<uint>.Shared.Rent(values);
        MemoryMarshal.AsBytes(vals.AsSpan()).Fill(pattern);
        ArrayPool<ChunkEvents.Row>.Shared.Return(rows);
        ArrayPool<uint>.Shared.Return(vals);
        return (rows, vals);
    }

    private static (ChunkEvents.Row Row, uint[] Values)[] Contents(ChunkEvents chunk) =>
        chunk.Rows.Select((r, i) => (r, r.Slot < ChunkEvents.ObjectSlot ? chunk.Values(i).ToArray() : [])).ToArray();

    [Fact]
    public void A_pooled_chunk_is_written_in_full()
    {
        var payload = Payload();
        var reference = CompactEventDecoder.DecodeColumns(payload);
        int values = reference.AllValues.Length;
        var expectedEvents = reference.ToArray();
        reference.ReturnBuffers();

        var (rowsA, _) = Poison(0xA5, values);
        var a = CompactEventDecoder.DecodeColumns(payload);
        Assert.Same(rowsA, a.Rows); // the poisoned array was taken: the test compares what it means to
        var contentsA = Contents(a);
        Assert.Equal(expectedEvents, a.ToArray());
        a.ReturnBuffers();

        var (rowsB, _) = Poison(0x5A, values);
        var b = CompactEventDecoder.DecodeColumns(payload);
        Assert.Same(rowsB, b.Rows);
        var contentsB = Contents(b);
        Assert.Equal(expectedEvents, b.ToArray());
        b.ReturnBuffers();

        for (int i = 0; i < Count; i++)
        {
            var (ra, va) = contentsA[i];
            var (rb, vb) = contentsB[i];
            Assert.Equal((ra.Icount, ra.Result, ra.Digest, ra.Site, ra.Number, ra.Vcpu, ra.Slot, ra.Held, ra.Zero),
                (rb.Icount, rb.Result, rb.Digest, rb.Site, rb.Number, rb.Vcpu, rb.Slot, rb.Held, rb.Zero));
            Assert.Equal(va, vb);
        }
    }

    [Fact]
    public void A_returned_chunk_is_empty()
    {
        var chunk = CompactEventDecoder.DecodeColumns(Payload());
        chunk.ReturnBuffers();
        Assert.Empty(chunk.Rows);
        Assert.ThrowsAny<IndexOutOfRangeException>(() => chunk.IcountAt(0));
    }
}
