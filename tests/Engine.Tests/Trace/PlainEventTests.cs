using Replayvisor.Engine.Trace;
using Replayvisor.Engine.Trace.Compact;

namespace Replayvisor.Engine.Tests.Trace;

/// <summary>
/// Hypercalls and upcalls without event objects: <see cref="TraceWriter.AppendHypercall"/> and
/// <see cref="TraceWriter.AppendUpcall"/> write the bytes <see cref="TraceWriter.Append"/> writes for
/// the same events, and <see cref="ChunkEvents"/> compares values with the decoded columns exactly
/// as the event objects compare.
/// </summary>
public sealed class PlainEventTests
{
    /// <summary>Random hypercalls (some with multicall entries), upcalls and the other kinds, in icount order.</summary>
    private static List<TraceEvent> RandomEvents(int seed, int count)
    {
        var rng = new Random(seed);
        var events = new List<TraceEvent>();
        ulong icount = 0;
        for (int i = 0; i < count; i++)
        {
            icount += (ulong)rng.Next(3) * (ulong)rng.Next(1 << rng.Next(31));
            int nr = rng.Next(4) == 0 ? rng.Next() - int.MaxValue / 2 : rng.Next(40);
            events.Add(rng.Next(6) switch
            {
                0 or 1 => new HypercallEvent(icount, nr, Enumerable.Range(0, rng.Next(7)).Select(_ => (uint)rng.NextInt64(1L << 32)).ToArray(),
                    rng.NextInt64(long.MinValue, long.MaxValue) >> rng.Next(64), OutputDigest: (ulong)rng.Next(2) * (ulong)rng.NextInt64(),
                    Site: (uint)rng.Next()) { Vcpu = rng.Next(3) },
                2 => new HypercallEvent(icount, 13, [1, 2], 0, Multicall: [new MulticallEntry(rng.Next(40), rng.Next(-3, 1))]) { Vcpu = rng.Next(2) },
                3 => new UpcallEvent(icount, rng.Next(4), Enumerable.Range(0, rng.Next(4)).Select(_ => (uint)rng.Next(1024)).ToArray())
                    { Eip = (uint)rng.NextInt64(1L << 32) >> rng.Next(32), Handler = (uint)rng.Next(3) * 0x40000000 },
                4 => new TimeEvent(icount, (TimeKind)rng.Next(4), (ulong)rng.NextInt64()),
                _ => new ExceptionEvent(icount, rng.Next(32), (uint)rng.Next(), 0, (uint)rng.Next()),
            });
        }
        return events;
    }

    private static byte[] Write(List<TraceEvent> events, bool plain)
    {
        var image = new byte[] { 1, 2, 3 };
        var header = TraceHeader.Create("test", "image", image, "xen-pv-x86_32");
        var ms = new MemoryStream();
        using (var w = new TraceWriter(ms, header, image, new TraceWriterOptions { MaxChunkEvents = 500 }, leaveOpen: true))
        {
            foreach (var e in events)
            {
                if (plain && e is HypercallEvent { Multicall.IsEmpty: true, Memory.IsEmpty: true } h)
                    w.AppendHypercall(h.Icount, h.Number, h.Args.AsSpan(), h.Result, h.OutputDigest, h.Site, h.Vcpu);
                else if (plain && e is UpcallEvent u)
                    w.AppendUpcall(u.Icount, u.Vcpu, u.Ports.AsSpan(), u.Eip, u.Handler);
                else
                    w.Append(e);
            }
            w.Complete(new TraceSummary(events[^1].Icount, ExitKind.GuestShutdown, ShutdownReason.PowerOff));
        }
        return ms.ToArray();
    }

    [Fact]
    public void Plain_hypercalls_and_upcalls_write_the_bytes_of_their_events()
    {
        var events = RandomEvents(5, 3000);
        Assert.Equal(Write(events, plain: false), Write(events, plain: true));
    }

    [Fact]
    public void Columns_compare_exactly_as_the_events_do()
    {
        var events = RandomEvents(8, 3000);
        var encoder = new CompactEventEncoder();
        foreach (var e in events) encoder.Add(e);
        var columns = CompactEventDecoder.DecodeColumns(encoder.Finish());
        Assert.Equal(events.Count, columns.Count);
        int plain = 0;
        for (int i = 0; i < events.Count; i++)
        {
            Assert.Equal(events[i].Icount, columns.IcountAt(i));
            Assert.Equal(events[i] is InputEvent, columns.IsInput(i));
            switch (events[i])
            {
                case HypercallEvent h:
                    bool same = h.Multicall.IsEmpty; // only plain hypercalls stay in columns
                    Assert.Equal(same, columns.HypercallEquals(i, h.Icount, h.Vcpu, h.Number, h.Args.AsSpan(), h.Result, h.OutputDigest, h.Site));
                    // Any one value different: not equal.
                    Assert.False(columns.HypercallEquals(i, h.Icount + 1, h.Vcpu, h.Number, h.Args.AsSpan(), h.Result, h.OutputDigest, h.Site));
                    Assert.False(columns.HypercallEquals(i, h.Icount, h.Vcpu + 1, h.Number, h.Args.AsSpan(), h.Result, h.OutputDigest, h.Site));
                    Assert.False(columns.HypercallEquals(i, h.Icount, h.Vcpu, h.Number + 1, h.Args.AsSpan(), h.Result, h.OutputDigest, h.Site));
                    Assert.False(columns.HypercallEquals(i, h.Icount, h.Vcpu, h.Number, [.. h.Args.AsSpan(), 0u], h.Result, h.OutputDigest, h.Site));
                    Assert.False(columns.HypercallEquals(i, h.Icount, h.Vcpu, h.Number, h.Args.AsSpan(), h.Result ^ 1, h.OutputDigest, h.Site));
                    Assert.False(columns.HypercallEquals(i, h.Icount, h.Vcpu, h.Number, h.Args.AsSpan(), h.Result, h.OutputDigest ^ 1, h.Site));
                    Assert.False(columns.HypercallEquals(i, h.Icount, h.Vcpu, h.Number, h.Args.AsSpan(), h.Result, h.OutputDigest, h.Site ^ 1));
                    if (h.Args.Count > 0)
                    {
                        var args = h.Args.ToArray();
                        args[^1] ^= 1;
                        Assert.False(columns.HypercallEquals(i, h.Icount, h.Vcpu, h.Number, args, h.Result, h.OutputDigest, h.Site));
                    }
                    Assert.False(columns.UpcallEquals(i, h.Icount, h.Vcpu, h.Args.AsSpan(), h.Site, (uint)h.Number));
                    if (same) plain++;
                    break;
                case UpcallEvent u:
                    Assert.True(columns.UpcallEquals(i, u.Icount, u.Vcpu, u.Ports.AsSpan(), u.Eip, u.Handler));
                    Assert.False(columns.UpcallEquals(i, u.Icount, u.Vcpu, [.. u.Ports.AsSpan(), 1u], u.Eip, u.Handler));
                    Assert.False(columns.UpcallEquals(i, u.Icount, u.Vcpu, u.Ports.AsSpan(), u.Eip + 1, u.Handler));
                    Assert.False(columns.UpcallEquals(i, u.Icount, u.Vcpu, u.Ports.AsSpan(), u.Eip, u.Handler + 1));
                    Assert.False(columns.UpcallEquals(i, u.Icount, u.Vcpu ^ 1, u.Ports.AsSpan(), u.Eip, u.Handler));
                    Assert.False(columns.HypercallEquals(i, u.Icount, u.Vcpu, (int)u.Handler, u.Ports.AsSpan(), 0, 0, u.Eip));
                    break;
                default:
                    Assert.False(columns.HypercallEquals(i, events[i].Icount, 0, 0, [], 0, 0, 0));
                    Assert.False(columns.UpcallEquals(i, events[i].Icount, 0, [], 0, 0));
                    break;
            }
        }
        Assert.True(plain > 500);
        // Built on demand, each event equals the one encoded.
        Assert.Equal(events, columns);
    }

    private static string Outcome(byte[] raw, bool countOnly)
    {
        try
        {
            var c = CompactEventDecoder.DecodeColumns(raw, countOnly);
            return $"{c.Count} events, {c.InputCount} inputs, {c.IcountAt(0)}..{c.IcountAt(c.Count - 1)}";
        }
        catch (CompactFormatException ex)
        {
            return "error: " + ex.Message;
        }
    }

    [Fact]
    public void Counting_inputs_checks_a_chunk_exactly_as_decoding_it()
    {
        var events = RandomEvents(13, 400);
        var encoder = new CompactEventEncoder();
        foreach (var e in events) encoder.Add(e);
        byte[] raw = encoder.Finish();
        Assert.Equal($"400 events, {events.Count(e => e is InputEvent)} inputs, {events[0].Icount}..{events[^1].Icount}", Outcome(raw, countOnly: true));
        // Every truncation and 2,000 single-byte changes: the same error, or the same counts.
        var rng = new Random(3);
        int errors = 0;
        for (int n = 0; n < raw.Length + 2000; n++)
        {
            byte[] bad = n < raw.Length ? raw[..n] : (byte[])raw.Clone();
            if (n >= raw.Length) bad[rng.Next(bad.Length)] ^= (byte)(1 << rng.Next(8));
            string full = Outcome(bad, countOnly: false);
            Assert.Equal(full, Outcome(bad, countOnly: true));
            if (full.StartsWith("error", StringComparison.Ordinal)) errors++;
        }
        Assert.True(errors > raw.Length / 2);
    }

    [Fact]
    public void The_reader_counts_a_chunks_inputs_without_keeping_its_events()
    {
        var events = RandomEvents(21, 2000);
        using var reader = TraceReader.Open(new MemoryStream(Write(events, plain: true)));
        Assert.True(reader.Index.Count >= 4);
        foreach (var chunk in reader.Index)
            Assert.Equal(reader.ReadChunk(chunk).Count(e => e is InputEvent), reader.ReadChunkInputCount(chunk));
    }
}
