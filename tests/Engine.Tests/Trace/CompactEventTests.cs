using Replayvisor.Engine.Trace;
using Replayvisor.Engine.Trace.Compact;

namespace Replayvisor.Engine.Tests.Trace;

/// <summary>The compact columnar events encoding (format 3, docs/trace-format.md "Compact events chunks").</summary>
public sealed class CompactEventTests
{
    private static TraceEvent[] RoundTrip(IEnumerable<TraceEvent> events)
    {
        var encoder = new CompactEventEncoder();
        foreach (var e in events) encoder.Add(e);
        return CompactEventDecoder.Decode(encoder.Finish());
    }

    [Fact]
    public void Edge_values_of_every_field_round_trip()
    {
        TraceEvent[] events =
        [
            new HypercallEvent(0, 29, [uint.MaxValue, 0, 0x80000000, 1, uint.MaxValue, 7], long.MinValue, OutputDigest: ulong.MaxValue, Site: uint.MaxValue),
            new HypercallEvent(0, 29, [0, uint.MaxValue, 0x7FFFFFFF, 0, 0, 0], long.MaxValue, Site: 0),
            new HypercallEvent(1, -5, [], -1),
            new HypercallEvent(1, int.MaxValue, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15], 0),
            new HypercallEvent(1, int.MinValue, Enumerable.Range(0, 16).Select(i => (uint)i).ToArray(), 0), // 16 args: stored whole
            new HypercallEvent(2, 13, [1, 2], 0, Multicall: [new MulticallEntry(int.MinValue, long.MinValue), new MulticallEntry(int.MaxValue, long.MaxValue)]),
            new HypercallEvent(3, 13, [1, 2], 0, Memory: [new GuestWrite(0xFFFFFFFF, new byte[] { 1 })], OutputDigest: 5),
            new UpcallEvent(4, int.MaxValue, [uint.MaxValue, 0]),
            new UpcallEvent(4, -1, [1]),
            new UpcallEvent(5, 0, []),
            new UpcallEvent(5, 1, [2]) { Eip = uint.MaxValue, Handler = 0xc0100000 },
            new UpcallEvent(5, 1, [2]) { Eip = 0, Handler = uint.MaxValue },
            new UpcallEvent(5, -1, [2]) { Eip = 7, Handler = 9 },
            new UpcallEvent(5, 0, []) { Eip = 0x80000000 },
            new TimeEvent(6, TimeKind.Tsc, ulong.MaxValue),
            new TimeEvent(6, TimeKind.Tsc, 0),
            new TimeEvent(6, (TimeKind)255, 1),
            new TimeEvent(6, (TimeKind)(-1), 1),
            new AsyncEvent(7, (AsyncKind)200, uint.MaxValue, ulong.MaxValue),
            new ExceptionEvent(8, int.MaxValue, uint.MaxValue, uint.MaxValue, uint.MaxValue),
            new ExceptionEvent(8, -3, 0, 0, 0),
            new ExceptionEvent(8, 14, 2, 0x1000, 0xc0100000) { Handler = 0xc0103b30 },
            new ExceptionEvent(8, 14, 2, 0x1000, 0xc0100000) { Handler = 0 },
            new ExceptionEvent(8, 13, 0, 0, 0xc0100000) { Handler = uint.MaxValue, Vcpu = 1 },
            new CheckpointEvent(9, []),
            new CheckpointEvent(9, new byte[300]),
            new HypercallEvent(10, 29, [1], 0) { Vcpu = 3 },
            new TimeEvent(10, TimeKind.Tsc, 5) { Vcpu = int.MaxValue },
            new AsyncEvent(10, AsyncKind.TimerExpiry, 3) { Vcpu = -1 },
            new ExceptionEvent(10, 14, 0, 0, 0) { Vcpu = 31 },
            new CheckpointEvent(10, new byte[16]) { Vcpu = 2 },
            new ConsoleOutputEvent(ulong.MaxValue, "x"u8.ToArray()) { Vcpu = 5 },
        ];
        Assert.Equal(events, RoundTrip(events));
    }

    [Fact]
    public void Every_sample_kind_and_random_sequences_round_trip()
    {
        Assert.Equal(TraceSamples.OneOfEach(), RoundTrip(TraceSamples.OneOfEach()));
        var rng = new Random(11);
        var events = new List<TraceEvent>();
        ulong icount = 0;
        for (int i = 0; i < 3000; i++)
        {
            icount += (ulong)rng.Next(3) * (ulong)rng.Next(1 << rng.Next(31));
            int nr = rng.Next(4) == 0 ? rng.Next() : rng.Next(40);
            events.Add(rng.Next(4) switch
            {
                0 => new HypercallEvent(icount, nr, Enumerable.Range(0, rng.Next(7)).Select(_ => (uint)rng.NextInt64(1L << 32)).ToArray(),
                    rng.NextInt64(long.MinValue, long.MaxValue) >> rng.Next(64), OutputDigest: (ulong)rng.Next(2) * (ulong)rng.NextInt64(), Site: (uint)rng.Next()),
                1 => new TimeEvent(icount, (TimeKind)rng.Next(4), (ulong)rng.NextInt64()),
                2 => new UpcallEvent(icount, rng.Next(4), Enumerable.Range(0, rng.Next(4)).Select(_ => (uint)rng.Next(1024)).ToArray())
                    { Eip = (uint)rng.NextInt64(1L << 32) >> rng.Next(32), Handler = (uint)rng.Next(3) * 0x40000000 },
                _ => new AsyncEvent(icount, (AsyncKind)rng.Next(3), (uint)rng.Next(64), (ulong)rng.Next()),
            });
        }
        Assert.Equal(events, RoundTrip(events));
    }

    [Fact]
    public void A_repeating_timer_loop_costs_about_a_byte_an_event_before_compression()
    {
        var events = TickerLoop(sites: false);
        var encoder = new CompactEventEncoder();
        foreach (var e in events) encoder.Add(e);
        var payload = encoder.Finish();
        Assert.Equal(events, CompactEventDecoder.Decode(payload));
        // Per loop after the first, 40 bytes: 4 kinds + 5 icount bytes (the delta 248 takes 2) + 2 numbers
        // + 2 shapes + 14 argument bytes (the deadline's +1,000,000 takes 3, the other 11 deltas are 0)
        // + 2 results + 2 site deltas + 3 async (kind, port, arg) + 3 upcall (vcpu, count, port)
        // + 3 vCPUs (both hypercalls and the async event).
        Assert.InRange(payload.Length, 40_000, 40_100);
    }

    private static List<TraceEvent> TickerLoop(bool sites)
    {
        // set_timer_op(now + 1 ms), SCHEDOP_block, the timer firing, the upcall: the ticker guest's loop.
        var events = new List<TraceEvent>();
        for (uint i = 0; i < 1000; i++)
        {
            ulong t = 82UL * 4 * i;
            ulong deadline = 1_000_000UL * (i + 1);
            events.Add(new HypercallEvent(t, 15, [(uint)deadline, (uint)(deadline >> 32), 0x1000, 0, 0x2000, 0], 0, Site: 0xc0100010));
            events.Add(new HypercallEvent(t + 80, 29, [1, 0, 0x1000, 0, 0x2000, 0], 0, Site: 0xc0100020));
            events.Add(new AsyncEvent(t + 80, AsyncKind.TimerExpiry, 3));
            events.Add(sites ? new UpcallEvent(t + 80, 0, [3]) { Eip = 0xc0100020, Handler = 0xc0100400 } : new UpcallEvent(t + 80, 0, [3]));
        }
        return events;
    }

    private static int ColumnCountOf(byte[] payload)
    {
        var head = new ColumnReader(payload, CompactColumn.Kind);
        head.Varint();
        return (int)head.Varint();
    }

    [Fact]
    public void Upcall_sites_take_a_seventeenth_column_only_when_a_chunk_has_them()
    {
        var without = new CompactEventEncoder();
        foreach (var e in TickerLoop(sites: false)) without.Add(e);
        var plain = without.Finish();
        Assert.Equal(CompactCodes.BaseColumnCount, ColumnCountOf(plain));
        Assert.All(CompactEventDecoder.Decode(plain).OfType<UpcallEvent>(), u => Assert.Equal((0u, 0u), (u.Eip, u.Handler)));

        var events = TickerLoop(sites: true);
        var with = new CompactEventEncoder();
        foreach (var e in events) with.Add(e);
        var payload = with.Finish();
        Assert.Equal((int)CompactColumn.UpcallSite + 1, ColumnCountOf(payload));
        Assert.Equal(events, CompactEventDecoder.Decode(payload));
        // Two bytes per loop after the first (both differences 0), the first loop's full values and one more column length.
        Assert.InRange(payload.Length - plain.Length, 2 * 1000, 2 * 1000 + 12);

        // The encoder starts every chunk afresh: the next chunk without sites has 16 columns again.
        foreach (var e in TickerLoop(sites: false)) with.Add(e);
        Assert.Equal(plain, with.Finish());
    }

    [Fact]
    public void Exception_handlers_take_an_eighteenth_column_and_leave_older_chunks_alone()
    {
        TraceEvent[] plain = [new ExceptionEvent(1, 14, 2, 0x1000, 0xc0100000), new UpcallEvent(2, 0, [3])];
        var encoder = new CompactEventEncoder();
        foreach (var e in plain) encoder.Add(e);
        Assert.Equal(CompactCodes.BaseColumnCount, ColumnCountOf(encoder.Finish()));

        // Handlers without upcall sites: column 16 is written too, with zero sites, and decodes to none.
        TraceEvent[] handlers = [new ExceptionEvent(1, 14, 2, 0x1000, 0xc0100000) { Handler = 0xc0103b30 }, new UpcallEvent(2, 0, [3]),
            new ExceptionEvent(3, 6, 0, 0, 0xc0100010) { Handler = 0xc0103ab0 }];
        foreach (var e in handlers) encoder.Add(e);
        var payload = encoder.Finish();
        Assert.Equal(CompactCodes.ColumnCount, ColumnCountOf(payload));
        Assert.Equal(handlers, CompactEventDecoder.Decode(payload));
    }

    [Fact]
    public void A_reader_skips_columns_past_the_ones_it_knows()
    {
        // A later writer's extra column (3 bytes, after every column this build knows) is skipped; the events decode as before.
        var events = TickerLoop(sites: true);
        var encoder = new CompactEventEncoder();
        foreach (var e in events) encoder.Add(e);
        var payload = encoder.Finish();
        int columns = ColumnCountOf(payload);
        var head = new ColumnReader(payload, CompactColumn.Kind);
        head.Varint();
        head.Varint();
        for (int i = 0; i < columns; i++) head.Varint();
        int columnsStart = payload.Length - head.Remaining;
        var rebuilt = new ColumnBuffer();
        rebuilt.Varint((ulong)events.Count);
        rebuilt.Varint((ulong)CompactCodes.ColumnCount + 1);
        var lengths = new ColumnReader(payload, CompactColumn.Kind);
        lengths.Varint();
        lengths.Varint();
        for (int i = 0; i < columns; i++) rebuilt.Varint(lengths.Varint());
        for (int i = columns; i < CompactCodes.ColumnCount; i++) rebuilt.Varint(0); // the columns this chunk left out, empty
        rebuilt.Varint(3);
        rebuilt.Bytes(payload.AsSpan(columnsStart));
        rebuilt.Bytes([1, 2, 3]);
        Assert.Equal(events, CompactEventDecoder.Decode(rebuilt.Written.ToArray()));
    }

    [Theory]
    [InlineData(new byte[] { }, "ends early")]
    [InlineData(new byte[] { 1, 1, 0 }, "columns")]
    [InlineData(new byte[] { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02 }, "over 64 bits")]
    public void Malformed_payloads_are_compact_format_errors(byte[] payload, string why)
    {
        var ex = Assert.Throws<CompactFormatException>(() => CompactEventDecoder.Decode(payload));
        Assert.Contains(why, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_truncation_and_byte_flip_of_a_payload_is_an_error_or_decodes()
    {
        var encoder = new CompactEventEncoder();
        foreach (var e in TraceSamples.OneOfEach()) encoder.Add(e);
        var payload = encoder.Finish();
        for (int n = 0; n < payload.Length; n++)
            Assert.Throws<CompactFormatException>(() => CompactEventDecoder.Decode(payload[..n]));
        for (int i = 0; i < payload.Length; i++)
            for (int bit = 0; bit < 8; bit++)
            {
                var bad = (byte[])payload.Clone();
                bad[i] ^= (byte)(1 << bit);
                try { CompactEventDecoder.Decode(bad); }
                catch (CompactFormatException) { }
            }
    }

    [Fact]
    public void A_written_trace_uses_compact_chunks_and_format_3()
    {
        var bytes = TraceSamples.Write(TraceSamples.Many(100));
        using var reader = TraceSamples.Open(bytes);
        Assert.Equal(3, reader.FormatVersion);
        var header = ChunkHeader.Parse(bytes.AsSpan((int)reader.Index[0].Offset, TraceLayout.ChunkHeaderSize), reader.Index[0].Offset, previousChain: null);
        Assert.Equal(ChunkKind.CompactEvents, header.Kind);
    }

    /// <summary>
    /// A trace writer reuses one payload buffer and one chunk buffer from chunk to chunk
    /// (<see cref="CompactEventEncoder.FinishInPlace"/>, <see cref="ChunkCodec"/>'s Encode into a buffer):
    /// a small chunk after a large one gives the bytes of a fresh encoder and a fresh buffer, none of the
    /// large chunk's bytes.
    /// </summary>
    [Fact]
    public void A_small_chunk_after_a_large_one_in_reused_buffers_is_the_fresh_chunk()
    {
        var rng = new Random(11);
        TraceEvent[] large = [.. Enumerable.Range(0, 3000).Select(i => (TraceEvent)new HypercallEvent((ulong)i * 97, rng.Next(40),
            [.. Enumerable.Range(0, 6).Select(_ => (uint)rng.NextInt64(1L << 32))], rng.Next(-40, 3), Site: (uint)rng.Next()))];
        TraceEvent[] small = [new UpcallEvent(5, 0, [3]) { Eip = 0xC0001234, Handler = 0xC0001000 }, new HypercallEvent(9, 29, [1, 2, 0, 0, 0, 0], 0)];

        var reused = new CompactEventEncoder();
        byte[] chunk = [];
        foreach (var e in large) reused.Add(e);
        int largeLength = ChunkCodec.Encode(ChunkKind.CompactEvents, reused.FinishInPlace(), 0, ref chunk, out _);
        foreach (var e in small) reused.Add(e);
        var smallPayload = reused.FinishInPlace().ToArray();
        int smallLength = ChunkCodec.Encode(ChunkKind.CompactEvents, smallPayload, 7, ref chunk, out var header);

        var fresh = new CompactEventEncoder();
        foreach (var e in small) fresh.Add(e);
        var freshPayload = fresh.Finish();
        Assert.Equal(freshPayload, smallPayload);
        Assert.True(largeLength > smallLength);
        Assert.Equal(ChunkCodec.Encode(ChunkKind.CompactEvents, freshPayload, 7), chunk.AsSpan(0, smallLength).ToArray());
        Assert.Equal(smallLength, TraceLayout.ChunkHeaderSize + header.StoredLength);
    }
}
