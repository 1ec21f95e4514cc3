using System.Buffers.Binary;
using System.Globalization;
using Replayvisor.Engine.Session;
using Replayvisor.Engine.Trace;
using Replayvisor.Record;
using Xunit.Abstractions;

namespace Replayvisor.Cli.Tests;

/// <summary>
/// `replayvisor replay` on mutated real traces (bit flips, truncation, chunk swaps, duplicated and
/// removed chunks, length edits, header edits with the checksums fixed up): never 70, never a stack
/// trace, never 10 (no mutation here changes the events in a way the format cannot see), and never
/// 0 for a trace that was changed at all. A few thousand cases in CI; set
/// REPLAYVISOR_TRACE_FUZZ_CASES for more (and REPLAYVISOR_FUZZ_SEED to explore other cases).
/// </summary>
public class TraceMutationFuzzTests(ITestOutputHelper output)
{
    // The layout as docs/trace-format.md describes it (format 2): a 10-byte preamble, then chunks
    // with a 20-byte header (kind/flags, stored length, raw length, payload CRC-32C, chain CRC-32C).
    private const int PreambleSize = 10;
    private const int ChunkHeaderSize = 20;
    private enum Kind : ushort { Header = 1, GuestImage = 2, Events = 3, Index = 4 }

    private static int Cases => int.TryParse(Environment.GetEnvironmentVariable("REPLAYVISOR_TRACE_FUZZ_CASES"), NumberStyles.None, CultureInfo.InvariantCulture, out int n) ? n : 3000;
    private static int Seed => int.TryParse(Environment.GetEnvironmentVariable("REPLAYVISOR_FUZZ_SEED"), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int n) ? n : 0;

    /// <summary>Small, quick recordings in many chunks: a virtual-clock one and a host-clock one with console input.</summary>
    private static readonly Lazy<byte[][]> Seeds = new(() =>
    [
        Record("events-pae", ClockKind.Virtual, null),
        Record("echo", ClockKind.Host, "hello\nsecond line\nquit\n"),
    ]);

    private static byte[] Record(string guest, ClockKind clock, string? input)
    {
        var trace = new MemoryStream();
        using var s = new LiveSession(new LiveRequest
        {
            Kernel = File.ReadAllBytes(Cli.Guest(guest)),
            ImageName = guest + ".elf",
            Machine = new Engine.Machine.XenMachineOptions { MemoryMiB = 16 },
            Clock = clock,
            CheckpointInterval = 20_000,
            Trace = trace,
            ConsoleOutput = Stream.Null,
            Stdin = input is null ? null : new MemoryStream(System.Text.Encoding.ASCII.GetBytes(input)),
            WriterOptions = new TraceWriterOptions { MaxChunkEvents = 12 },
        });
        var r = s.Run();
        Assert.Equal(Engine.Machine.MachineExitKind.PoweredOff, r.Exit.Kind);
        return trace.ToArray();
    }

    /// <summary>The chunks of a (version 2) trace: offset and whole length, in file order.</summary>
    private static List<(int Offset, int Length, Kind Kind)> Chunks(byte[] t)
    {
        var list = new List<(int, int, Kind)>();
        int at = PreambleSize;
        while (at + ChunkHeaderSize <= t.Length)
        {
            var kind = (Kind)(BinaryPrimitives.ReadUInt32LittleEndian(t.AsSpan(at)) & 0xFFFF);
            int len = ChunkHeaderSize + (int)BinaryPrimitives.ReadUInt32LittleEndian(t.AsSpan(at + 4));
            list.Add((at, len, kind));
            at += len;
            if (kind == Kind.Index) break;
        }
        return list;
    }

    private static byte[] Mutate(byte[] t, Random rng, out string name)
    {
        var chunks = Chunks(t);
        var events = chunks.Where(c => c.Kind == Kind.Events).ToList();
        switch (rng.Next(7))
        {
            case 0:
            {
                var b = (byte[])t.Clone();
                int flips = 1 + rng.Next(8);
                for (int i = 0; i < flips; i++) b[rng.Next(b.Length)] ^= (byte)(1 << rng.Next(8));
                name = $"{flips} bit flips";
                return b;
            }
            case 1:
            {
                int cut = rng.Next(t.Length);
                name = $"truncated to {cut}";
                return t[..cut];
            }
            case 2 when events.Count >= 2:
            {
                int i = rng.Next(events.Count - 1);
                var (a, b) = (events[i], events[i + 1]);
                name = $"events chunks {i} and {i + 1} swapped";
                return [.. t[..a.Offset], .. t.AsSpan(b.Offset, b.Length), .. t.AsSpan(a.Offset, a.Length), .. t[(b.Offset + b.Length)..]];
            }
            case 3 when events.Count >= 1:
            {
                var c = events[rng.Next(events.Count)];
                name = $"chunk at {c.Offset} duplicated";
                return [.. t[..(c.Offset + c.Length)], .. t.AsSpan(c.Offset, c.Length), .. t[(c.Offset + c.Length)..]];
            }
            case 4 when events.Count >= 1:
            {
                var c = events[rng.Next(events.Count)];
                name = $"chunk at {c.Offset} removed";
                return [.. t[..c.Offset], .. t[(c.Offset + c.Length)..]];
            }
            case 5:
            {
                var c = chunks[rng.Next(chunks.Count)];
                var b = (byte[])t.Clone();
                int field = 4 + 4 * rng.Next(2);
                uint value = rng.Next(3) switch { 0 => 1u << 30, 1 => (uint)rng.Next(), _ => BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(c.Offset + field)) + (uint)rng.Next(-3, 4) };
                BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(c.Offset + field), value);
                name = $"chunk at {c.Offset} {(field == 4 ? "stored" : "raw")} length := {value}";
                return b;
            }
            default:
            {
                // A header option changed and the header chunk re-encoded with its own checksums right.
                using var reader = TraceReader.Open(new MemoryStream(t));
                var options = reader.Header.Options.ToDictionary(kv => kv.Key, kv => kv.Value);
                string key = options.Keys.ElementAt(rng.Next(options.Count));
                options[key] = rng.Next(3) switch { 0 => "", 1 => "1e3", _ => (rng.Next(1, 64)).ToString(CultureInfo.InvariantCulture) };
                var h = reader.Header;
                var header = new TraceHeader(h.EngineBuild, h.GuestImageSha256, h.GuestImageName, h.GuestKind, options);
                var first = chunks[0];
                byte[] chunk = RawChunk(Kind.Header, MessagePack.MessagePackSerializer.Serialize(header),
                    Crc32C(0, t.AsSpan(0, PreambleSize)));
                name = $"header option {key} := '{options[key]}' (checksums fixed up)";
                return [.. t[..first.Offset], .. chunk, .. t[(first.Offset + first.Length)..]];
            }
        }
    }

    /// <summary>An uncompressed chunk with both checksums right (docs/trace-format.md "Chunks").</summary>
    private static byte[] RawChunk(Kind kind, byte[] payload, uint previousChain)
    {
        var chunk = new byte[ChunkHeaderSize + payload.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(chunk, (uint)kind);
        BinaryPrimitives.WriteUInt32LittleEndian(chunk.AsSpan(4), (uint)payload.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(chunk.AsSpan(8), (uint)payload.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(chunk.AsSpan(12), Crc32C(0, payload));
        BinaryPrimitives.WriteUInt32LittleEndian(chunk.AsSpan(16), Crc32C(previousChain, chunk.AsSpan(0, 16)));
        payload.CopyTo(chunk, ChunkHeaderSize);
        return chunk;
    }

    /// <summary>CRC-32C continued from <paramref name="crc"/> (the CRC of the bytes before).</summary>
    private static uint Crc32C(uint crc, ReadOnlySpan<byte> data)
    {
        crc = ~crc;
        foreach (byte b in data) crc = System.Numerics.BitOperations.Crc32C(crc, b);
        return ~crc;
    }

    [Fact]
    public void MutatedTracesGetTruthfulExitCodes()
    {
        var rng = new Random(0x12F0 + Seed);
        var counts = new SortedDictionary<int, int>();
        var failures = new List<string>();
        string dir = Directory.CreateTempSubdirectory("rv-fuzz-").FullName;
        for (int i = 0; i < Cases; i++)
        {
            byte[] original = Seeds.Value[i % Seeds.Value.Length];
            byte[] mutated = Mutate(original, rng, out string name);
            if (mutated.AsSpan().SequenceEqual(original)) continue;
            string path = Path.Combine(dir, "case.rvt");
            File.WriteAllBytes(path, mutated);
            var stdout = new StringWriter();
            var stderr = new StringWriter();
            int code = CliApp.Run(["replay", path, "--quiet"], stdout, stderr);
            counts[code] = counts.GetValueOrDefault(code) + 1;
            string err = stderr.ToString();
            string? problem = code switch
            {
                70 => "internal error",
                10 => "divergence",
                0 => "exit 0 for a changed trace",
                _ when err.Contains("   at ", StringComparison.Ordinal) || err.Contains("Exception", StringComparison.Ordinal) => "a stack trace",
                _ when err.TrimEnd().Split('\n').Length != 1 => "more than one line",
                _ => null,
            };
            if (problem != null && failures.Count < 20) failures.Add($"case {i} (seed {i % Seeds.Value.Length}, {name}): {problem}: exit {code}: {err.Trim()}");
        }
        output.WriteLine($"{counts.Values.Sum()} cases; replay exit codes: {string.Join(", ", counts.Select(kv => $"{kv.Key}: {kv.Value}"))}");
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }
}
