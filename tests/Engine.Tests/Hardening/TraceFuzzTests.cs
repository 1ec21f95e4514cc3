using Xunit.Abstractions;
using System.Buffers.Binary;
using MessagePack;
using Replayvisor.Engine.Trace;

namespace Replayvisor.Engine.Tests.Hardening;

/// <summary>
/// Mutated traces: <see cref="TraceReader.Open"/> and enumerating <see cref="TraceReader.ReadEvents"/>
/// either succeed or throw <see cref="TraceFormatException"/> with a fitting <see cref="TraceError"/>
/// and a one-line message naming the byte offset; nothing else, no allocation driven by a lying
/// length, no hang.
/// </summary>
public sealed class TraceFuzzTests(ITestOutputHelper output)
{
    /// <summary>The oracle.</summary>
    internal static string? Check(byte[] input)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        string phase = "Open";
        string? problem = null;
        try
        {
            using var reader = TraceReader.Open(new MemoryStream(input, writable: false));
            _ = (reader.Header.Options.Count, reader.Stats, reader.Summary, reader.Complete);
            if (reader.Header.EngineBuild is null || reader.Header.GuestKind is null || reader.Header.GuestImageName is null)
                return "a header with a nil field was accepted";
            if (reader.Damage is { } damage && damage.Error != TraceError.DamagedChunk)
                return $"Damage is {damage.Error}, not DamagedChunk";
            if (!reader.Complete && reader.IncompleteReason is { } why && Fuzz.CheckMessage(why) is { } bad)
                return "IncompleteReason: " + bad;
            phase = "ReadEvents";
            foreach (var e in reader.ReadEvents())
                _ = e.GetHashCode() + e.ToString().Length;
        }
        catch (TraceFormatException ex)
        {
            problem = Fuzz.CheckMessage(ex.Message);
            if (problem is null && ex.Offset is { } at)
            {
                if (at < 0 || at > input.Length) problem = $"offset {at} outside the {input.Length}-byte trace";
                else if (!ex.Message.Contains($"byte offset {at}", StringComparison.Ordinal)) problem = "message does not name the offset";
            }
            if (problem is null && ex.Offset is null && ex.Error != TraceError.Empty)
                problem = $"{ex.Error} without an offset: {ex.Message}";
            if (problem is null && phase == "ReadEvents" && ex.Error != TraceError.DamagedChunk)
                problem = $"ReadEvents threw {ex.Error}: {ex.Message}";
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        long budget = 16L * 1024 * 1024 + 300L * input.Length;
        if (problem is null && allocated > budget)
            problem = $"allocated {allocated} bytes reading a {input.Length}-byte trace";
        return problem is null ? null : $"[{phase}] {problem}";
    }

    [Fact]
    public void Seeds_read_back()
    {
        foreach (var seed in TraceSeed.All)
        {
            Assert.Null(Check(seed.Bytes));
            // The re-assembler is faithful: putting a chunk back unchanged gives a readable, equal trace.
            var same = seed.WithChunk(seed.Chunks.Count - 1, seed.Chunks[^1].Bytes);
            Assert.Null(Check(same));
            using var a = TraceReader.Open(new MemoryStream(seed.Bytes));
            using var b = TraceReader.Open(new MemoryStream(same));
            Assert.Equal(a.ReadEvents().ToList(), b.ReadEvents().ToList());
            Assert.Equal(a.Complete, b.Complete);
        }
    }

    [Fact]
    public void Truncation_at_every_chunk_boundary_and_inside_chunks() => output.WriteLine($"{Fuzz.Run(Truncations(), Check)} cases");

    [Fact]
    public void Chunk_header_fields_that_lie() => output.WriteLine($"{Fuzz.Run(HeaderLies(), Check)} cases");

    [Fact]
    public void Random_bit_flips_in_every_region() => output.WriteLine($"{Fuzz.Run(BitFlips(Fuzz.Iterations(12)), Check)} cases");

    [Fact]
    public void Crc_valid_payloads_that_are_garbage() => output.WriteLine($"{Fuzz.Run(GarbagePayloads(Fuzz.Iterations(40)), Check)} cases");

    [Fact]
    public void Crc_valid_MessagePack_bombs() => output.WriteLine($"{Fuzz.Run(Bombs(), Check)} cases");

    [Fact]
    public void Crc_valid_LZ4_garbage_and_raw_length_lies() => output.WriteLine($"{Fuzz.Run(Lz4Garbage(Fuzz.Iterations(60)), Check)} cases");

    private static IEnumerable<FuzzCase> Truncations()
    {
        foreach (var seed in TraceSeed.All)
        {
            var cuts = new SortedSet<int>();
            for (int i = 0; i <= 40; i++) cuts.Add(i);
            foreach (var c in seed.Chunks)
                foreach (int d in new[] { -1, 0, 1, 4, 8, 12, 15, 16, 17, c.Bytes.Length / 2, c.Bytes.Length - 1 })
                    cuts.Add(c.Offset + d);
            for (int i = 1; i <= 17; i++) cuts.Add(seed.Bytes.Length - i);
            foreach (int cut in cuts.Where(c => c >= 0 && c < seed.Bytes.Length))
                yield return new($"{seed.Name} truncated to {cut}", seed.Bytes[..cut]);
        }
    }

    private static IEnumerable<FuzzCase> HeaderLies()
    {
        var rng = new Random(Fuzz.Seed(0x7ACE));
        foreach (var seed in TraceSeed.All)
        {
            for (int i = 0; i < seed.Chunks.Count; i++)
            {
                var c = seed.Chunks[i];
                uint remaining = (uint)(seed.Bytes.Length - c.Offset - TraceLayout.ChunkHeaderSize);
                var values = Fuzz.Sample(Mutate.Interesting32, rng, 8)
                    .Concat<uint>([0x80000000, 0xFFFFFFFF, 0x7FFFFFFF, remaining, remaining + 1, remaining - 1, (uint)c.StoredLength + 1, (uint)c.StoredLength - 1, TraceLayout.MaxPayload, TraceLayout.MaxPayload + 1u]);
                foreach (uint v in values)
                {
                    yield return new($"{seed.Name} chunk{i}({c.Kind}).stored=0x{v:X}", Mutate.Put32(seed.Bytes, c.Offset + 4, v));
                    yield return new($"{seed.Name} chunk{i}({c.Kind}).raw=0x{v:X}", Mutate.Put32(seed.Bytes, c.Offset + 8, v));
                    // Both lengths lying together (a raw chunk needs stored == raw to get past the header check).
                    yield return new($"{seed.Name} chunk{i}({c.Kind}).stored=raw=0x{v:X}",
                        Mutate.Put32(Mutate.Put32(seed.Bytes, c.Offset + 4, v), c.Offset + 8, v));
                }
                foreach (uint kind in new uint[] { 0, 1, 2, 3, 4, 5, 0x10001, 0x20003, 0xFFFF, 0xFFFFFFFF })
                    yield return new($"{seed.Name} chunk{i}({c.Kind}).kind=0x{kind:X}", Mutate.Put32(seed.Bytes, c.Offset, kind));
            }
            if (seed.Complete)
                foreach (long v in new long[] { 0, 10, -1, long.MinValue, long.MaxValue, seed.Bytes.Length, seed.Bytes.Length - 16, seed.Chunks[^1].Offset + 1, seed.Chunks[0].Offset })
                {
                    var b = (byte[])seed.Bytes.Clone();
                    BinaryPrimitives.WriteInt64LittleEndian(b.AsSpan(b.Length - TraceLayout.FooterSize), v);
                    yield return new($"{seed.Name} footer index offset={v}", b);
                }
            foreach (ushort version in new ushort[] { 0, 2, 0xFFFF })
                yield return new($"{seed.Name} version={version}", Mutate.Put16(seed.Bytes, 8, version));
        }
    }

    private static IEnumerable<FuzzCase> BitFlips(int perRegion)
    {
        var rng = new Random(Fuzz.Seed(0xF11B));
        foreach (var seed in TraceSeed.All)
            foreach (var (name, offset, length) in seed.Regions())
                for (int i = 0; i < perRegion && length > 0; i++)
                {
                    int flips = 1 + rng.Next(i % 2 == 0 ? 2 : 16);
                    yield return new($"{seed.Name} #{i} {flips} flips in {name}", Mutate.FlipBits(seed.Bytes, rng, offset, length, flips));
                }
    }

    /// <summary>Each chunk's real payload, mutated, then re-encoded with a valid CRC (LZ4 or raw).</summary>
    private static IEnumerable<FuzzCase> GarbagePayloads(int perChunk)
    {
        var rng = new Random(Fuzz.Seed(0x6A2B));
        foreach (var seed in TraceSeed.All)
            for (int i = 0; i < seed.Chunks.Count; i++)
            {
                var c = seed.Chunks[i];
                var raw = c.Raw();
                if (c.Kind == ChunkKind.GuestImage) raw = raw[..Math.Min(raw.Length, 64)]; // its bytes are opaque
                for (int k = 0; k < perChunk && raw.Length > 0; k++)
                {
                    byte[] mutated = (k % 4) switch
                    {
                        0 => Mutate.FlipBits(raw, rng, 0, raw.Length, 1 + rng.Next(6)),
                        1 => Mutate.OverwriteBytes(raw, rng, 0, raw.Length, 1 + rng.Next(4)),
                        2 => raw[..rng.Next(raw.Length)],
                        _ => Splice(raw, rng),
                    };
                    yield return new($"{seed.Name} chunk{i}({c.Kind}) payload mutation {k}",
                        seed.WithChunk(i, ChunkCodec.Encode(c.Kind, mutated)));
                }
            }
    }

    private static byte[] Splice(byte[] raw, Random rng)
    {
        int at = rng.Next(raw.Length);
        var insert = new byte[1 + rng.Next(8)];
        rng.NextBytes(insert);
        return [.. raw[..at], .. insert, .. raw[at..]];
    }

    /// <summary>MessagePack made to hurt a decoder: huge lengths, deep nesting, unknown union keys, wrong types.</summary>
    internal static IEnumerable<(string Name, byte[] Payload)> BombPayloads()
    {
        byte[] Arr(params byte[][] items) => [.. ArrHeader(items.Length), .. items.SelectMany(x => x)];
        byte[] Event(int key, params byte[][] fields) => Arr(Int(key), Arr(fields));
        byte[] deep(int depth, byte[] leaf) => [.. Enumerable.Repeat((byte)0x91, depth), .. leaf];
        byte[] icount = [0x05];

        yield return ("array32 0x7FFFFFFF", [0xDD, 0x7F, 0xFF, 0xFF, 0xFF]);
        yield return ("array32 0xFFFFFFFF", [0xDD, 0xFF, 0xFF, 0xFF, 0xFF, 0xC0]);
        yield return ("array16 with too few items", [0xDC, 0xFF, 0xFF, 0xC0, 0xC0]);
        yield return ("map32 huge", [0xDF, 0x7F, 0xFF, 0xFF, 0xFF, 0x00, 0x00]);
        yield return ("str32 huge", [0xDB, 0x7F, 0xFF, 0xFF, 0xFF, 0x41]);
        yield return ("bin32 huge", [0xC6, 0x7F, 0xFF, 0xFF, 0xFF, 0x41]);
        yield return ("ext32 huge", [0xC9, 0x7F, 0xFF, 0xFF, 0xFF, 0x01]);
        yield return ("nesting depth 100000", deep(100_000, [0xC0]));
        yield return ("nesting depth 600 inside an event", Arr(Event(0, icount, Int(1), deep(600, [0x00]), Int(0))));
        yield return ("nesting via maps", [.. Enumerable.Repeat(new byte[] { 0x81, 0xC0 }, 50_000).SelectMany(x => x), 0xC0]);
        yield return ("never-used code 0xC1", [0xC1]);
        yield return ("empty", []);
        yield return ("nil", [0xC0]);
        yield return ("unknown union key 99", Arr(Event(99, icount)));
        yield return ("union key -1", Arr(Arr([0xFF], Arr(icount))));
        yield return ("union key int64 max", Arr(Arr([0xD3, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], Arr(icount))));
        yield return ("union key as string", Arr(Arr([0xA1, 0x41], Arr(icount))));
        yield return ("union of three elements", Arr(Arr(Int(2), Arr(icount), Int(0))));
        yield return ("union body is a map", Arr(Arr(Int(2), [0x81, 0x00, 0x05])));
        yield return ("union body is nil", Arr(Arr(Int(2), [0xC0])));
        yield return ("event with no fields", Arr(Event(0)));
        yield return ("hypercall args array32 huge", Arr(Event(0, icount, Int(1), [0xDD, 0x7F, 0xFF, 0xFF, 0xFF], Int(0))));
        yield return ("guest write bin32 huge", Arr(Event(0, icount, Int(1), Arr(), Int(0), Arr(), Arr(Arr(Int(1), [0xC6, 0x7F, 0xFF, 0xFF, 0xFF])))));
        yield return ("multicall entries nil", Arr(Event(0, icount, Int(1), Arr(), Int(0), Arr([0xC0], [0xC0]), Arr([0xC0]))));
        yield return ("failsafe cause nil", Arr(Event(7, icount, Int(1), [0xC0])));
        yield return ("failsafe cause str32 huge", Arr(Event(7, icount, Int(1), [0xDB, 0x7F, 0xFF, 0xFF, 0xFF])));
        yield return ("shutdown detail invalid UTF-8", Arr(Event(8, icount, Int(0), Int(0), [0xA2, 0xFF, 0xFE])));
        yield return ("negative icount", Arr(Event(2, [0xFF], Int(0), Int(1))));
        yield return ("float icount", Arr(Event(2, [0xCB, 0x7F, 0xF0, 0, 0, 0, 0, 0, 0], Int(0), Int(1))));
        yield return ("icount uint64 max then 0", Arr(Event(2, [0xCF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], Int(0), Int(1)), Event(2, Int(0), Int(0), Int(1))));
        yield return ("enum out of range", Arr(Event(2, icount, [0xCE, 0xFF, 0xFF, 0xFF, 0xFF], Int(1))));
        yield return ("ulong field as -1", Arr(Event(2, icount, Int(0), [0xFF])));
        yield return ("int field as uint64 max", Arr(Event(0, icount, [0xCF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], Arr(), Int(0))));
        yield return ("checkpoint hash as array", Arr(Event(9, icount, Arr(Int(1), Int(2)))));
        yield return ("timestamp ext", Arr(Event(2, [0xD6, 0xFF, 0, 0, 0, 0], Int(0), Int(1))));
        yield return ("trailing bytes", [.. Arr(Event(2, icount, Int(0), Int(1))), 0x00]);
        yield return ("two arrays", [.. Arr(Event(2, icount, Int(0), Int(1))), .. Arr(Event(2, icount, Int(0), Int(1)))]);
        // Header-shaped and index-shaped garbage.
        yield return ("header with nil fields", Arr([0xC0], [0xC0], [0xC0], [0xC0], [0xC0]));
        yield return ("header with duplicate option keys", Arr(Str("b"), Str("x"), Str("i"), Str("k"), [0x82, .. Str("a"), .. Str("1"), .. Str("a"), .. Str("2")]));
        yield return ("header with nil option key", Arr(Str("b"), Str("x"), Str("i"), Str("k"), [0x81, 0xC0, .. Str("1")]));
        yield return ("header with nil option value", Arr(Str("b"), Str("x"), Str("i"), Str("k"), [0x81, .. Str("a"), 0xC0]));
        yield return ("header as a map", [0x81, 0x00, .. Str("b")]);
        yield return ("index with nil entries", Arr(Arr([0xC0], [0xC0]), Arr(Int(1), Int(0), Int(0))));
        yield return ("index with nil summary", Arr(Arr(), [0xC0]));
        yield return ("index with huge entry count", Arr([0xDD, 0x7F, 0xFF, 0xFF, 0xFF], [0xC0]));
        yield return ("index entry with negative lengths", Arr(Arr(Arr(Int(10), [0xFF], [0xFF], Int(0), Int(0), Int(1))), Arr(Int(1), Int(0), Int(0))));
    }

    private static byte[] ArrHeader(int n) => n < 16 ? [(byte)(0x90 | n)] : [0xDC, (byte)(n >> 8), (byte)n];
    private static byte[] Int(int v) => MessagePackSerializer.Serialize(v);
    private static byte[] Str(string s) => MessagePackSerializer.Serialize(s);

    private static IEnumerable<FuzzCase> Bombs()
    {
        foreach (var seed in TraceSeed.All)
            foreach (var (name, payload) in BombPayloads())
                for (int i = 0; i < seed.Chunks.Count; i++)
                {
                    var c = seed.Chunks[i];
                    if (c.Kind == ChunkKind.GuestImage) continue;
                    if (c.HoldsEvents && i > 3 && i != seed.Chunks.Count - 2) continue; // first and last events chunks suffice
                    yield return new($"{seed.Name} chunk{i}({c.Kind}) := {name}", seed.WithChunk(i, ChunkCodec.Encode(c.Kind, payload)));
                    // Format 3 writes compact events chunks but still reads MessagePack ones: bomb those too.
                    if (c.Kind == ChunkKind.CompactEvents)
                        yield return new($"{seed.Name} chunk{i}(Events) := {name}", seed.WithChunk(i, ChunkCodec.Encode(ChunkKind.Events, payload)));
                    if (payload.Length > 0)
                        yield return new($"{seed.Name} chunk{i}({c.Kind}) := {name} (stored raw)", seed.WithChunk(i, RawChunkBytes(c.Kind, payload)));
                }
    }

    /// <summary>A chunk with a valid CRC and no compression, whatever the payload.</summary>
    internal static byte[] RawChunkBytes(ChunkKind kind, byte[] payload, ChunkFlags flags = ChunkFlags.None, int? rawLength = null)
    {
        var chunk = new byte[TraceLayout.ChunkHeaderSize + payload.Length];
        new ChunkHeader(kind, flags, payload.Length, rawLength ?? payload.Length, Crc32C.Compute(payload)).WriteTo(chunk, 0);
        payload.CopyTo(chunk, TraceLayout.ChunkHeaderSize);
        return chunk;
    }

    private static IEnumerable<FuzzCase> Lz4Garbage(int perChunk)
    {
        var rng = new Random(Fuzz.Seed(0x124));
        foreach (var seed in TraceSeed.All)
            for (int i = 0; i < seed.Chunks.Count; i++)
            {
                var c = seed.Chunks[i];
                var realRaw = c.Raw();
                var real = K4os.Compression.LZ4.LZ4Codec.Encode(realRaw, 0, realRaw.Length, new byte[K4os.Compression.LZ4.LZ4Codec.MaximumOutputSize(realRaw.Length)], 0, K4os.Compression.LZ4.LZ4Codec.MaximumOutputSize(realRaw.Length));
                var compressed = new byte[Math.Max(real, 0)];
                K4os.Compression.LZ4.LZ4Codec.Encode(realRaw, compressed);
                for (int k = 0; k < perChunk; k++)
                {
                    byte[] stored;
                    if (k % 2 == 0 && compressed.Length > 0)
                        stored = Mutate.FlipBits(compressed, rng, 0, compressed.Length, 1 + rng.Next(4));
                    else
                    {
                        stored = new byte[1 + rng.Next(200)];
                        rng.NextBytes(stored);
                    }
                    int raw = (k % 5) switch
                    {
                        0 => realRaw.Length,
                        1 => TraceLayout.MaxPayload,
                        2 => rng.Next(0, 1 << 20),
                        3 => Math.Max(0, realRaw.Length - 1 - rng.Next(8)),
                        _ => realRaw.Length + 1 + rng.Next(1000),
                    };
                    yield return new($"{seed.Name} chunk{i}({c.Kind}) LZ4 garbage {k} ({stored.Length} bytes, raw length {raw})",
                        seed.WithChunk(i, RawChunkBytes(c.Kind, stored, ChunkFlags.Lz4, raw)));
                }
            }
    }
}
