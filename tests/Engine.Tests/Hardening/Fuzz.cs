using System.Globalization;

namespace Replayvisor.Engine.Tests.Hardening;

/// <summary>
/// The fuzz harness: deterministic cases (fixed seeds), each run under a watchdog, every
/// unexpected outcome collected and reported with the case's name so it can be reproduced.
/// </summary>
/// <remarks>
/// CI runs a small, fixed number of random cases per strategy (a few seconds in all). For a longer
/// run set <c>REPLAYVISOR_FUZZ_ITERATIONS</c> (random cases per strategy, e.g. 20000) and optionally
/// <c>REPLAYVISOR_FUZZ_SEED</c> (an integer; the default seeds are fixed) — see README.md here.
/// </remarks>
internal static class Fuzz
{
    public const string IterationsVariable = "REPLAYVISOR_FUZZ_ITERATIONS";
    public const string SeedVariable = "REPLAYVISOR_FUZZ_SEED";

    /// <summary>Random cases per strategy: <paramref name="ciDefault"/> unless the environment asks for more.</summary>
    public static int Iterations(int ciDefault)
    {
        var text = Environment.GetEnvironmentVariable(IterationsVariable);
        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0 ? n : ciDefault;
    }

    /// <summary>True when REPLAYVISOR_FUZZ_ITERATIONS asks for a longer run: sweeps then try every value.</summary>
    public static bool Long => Iterations(0) > 0;

    /// <summary>All of <paramref name="values"/> in a long run; in CI, <paramref name="ciCount"/> of them picked by <paramref name="rng"/>.</summary>
    public static IEnumerable<T> Sample<T>(IReadOnlyList<T> values, Random rng, int ciCount)
    {
        if (Long || values.Count <= ciCount) return values;
        return Enumerable.Range(0, ciCount).Select(_ => values[rng.Next(values.Count)]).ToList();
    }

    /// <summary>A fixed seed per strategy, shifted by REPLAYVISOR_FUZZ_SEED when set.</summary>
    public static int Seed(int fixedSeed)
    {
        var text = Environment.GetEnvironmentVariable(SeedVariable);
        return int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var s)
            ? unchecked(fixedSeed * 31 + s) : fixedSeed;
    }

    /// <summary>
    /// Runs <paramref name="check"/> on every case on a worker thread. A check returns null when the
    /// outcome is acceptable, or why not. A case that runs longer than <paramref name="perCase"/>
    /// fails the test as a hang. Returns the number of cases run.
    /// </summary>
    public static int Run(IEnumerable<FuzzCase> cases, Func<byte[], string?> check, TimeSpan? perCase = null)
    {
        var limit = perCase ?? TimeSpan.FromSeconds(20);
        var failures = new List<string>();
        string current = "(none)";
        int started = 0, done = 0;
        Exception? crash = null;
        var worker = new Thread(() =>
        {
            try
            {
                foreach (var c in cases)
                {
                    Volatile.Write(ref current, c.Name);
                    Interlocked.Increment(ref started);
                    string? problem;
                    try
                    {
                        problem = check(c.Input);
                    }
                    catch (Exception ex)
                    {
                        problem = $"{ex.GetType().Name}: {FirstLine(ex.Message)}";
                    }
                    if (problem is not null)
                        lock (failures) failures.Add($"{c.Name}: {problem}");
                    Interlocked.Increment(ref done);
                }
            }
            catch (Exception ex)
            {
                crash = ex;
            }
        }, 16 * 1024 * 1024) { IsBackground = true, Name = "fuzz" };
        worker.Start();

        int lastDone = -1;
        var sinceProgress = System.Diagnostics.Stopwatch.StartNew();
        while (!worker.Join(TimeSpan.FromMilliseconds(100)))
        {
            int now = Volatile.Read(ref done);
            if (now != lastDone)
            {
                lastDone = now;
                sinceProgress.Restart();
            }
            else if (sinceProgress.Elapsed > limit)
            {
                Assert.Fail($"hang: case '{Volatile.Read(ref current)}' has run for more than {limit.TotalSeconds} s");
            }
        }
        if (crash is not null)
            Assert.Fail($"the case generator failed: {crash}");
        if (failures.Count > 0)
            Assert.Fail($"{failures.Count} of {done} cases misbehaved:\n  " + string.Join("\n  ", failures.Take(25)));
        return done;
    }

    /// <summary>An acceptable error message: present, one line, not absurdly long.</summary>
    public static string? CheckMessage(string message)
    {
        if (string.IsNullOrWhiteSpace(message)) return "empty message";
        if (message.IndexOfAny(['\n', '\r']) >= 0) return $"multi-line message: {FirstLine(message)}";
        if (message.Any(char.IsControl)) return $"control character in message: {message.Replace('\0', '?')}";
        if (message.Length > 1000) return $"message of {message.Length} characters";
        return null;
    }

    public static string FirstLine(string s)
    {
        int nl = s.IndexOfAny(['\n', '\r']);
        return nl < 0 ? s : s[..nl] + " ...";
    }
}

/// <summary>One fuzz input and a name that says how it was made (enough to make it again).</summary>
internal readonly record struct FuzzCase(string Name, byte[] Input);

/// <summary>Mutation helpers shared by the ELF and trace fuzzers.</summary>
internal static class Mutate
{
    /// <summary>32-bit values that break length and offset arithmetic.</summary>
    public static readonly uint[] Interesting32 =
    [
        0, 1, 2, 3, 4, 7, 8, 0xF, 0x10, 0x20, 0x34, 0x40, 0x7F, 0x80, 0xFF, 0x100, 0xFFF, 0x1000,
        0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0x80000001, 0xFFFFFFF0, 0xFFFFFFFC,
        0xFFFFFFFE, 0xFFFFFFFF, 0x40000000, 0x3FFFFFFF, 0xC0000000, 0xF5800000, 0xF57FF000,
    ];

    public static readonly ushort[] Interesting16 = [0, 1, 2, 3, 4, 31, 32, 33, 39, 40, 41, 52, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF];

    public static byte[] FlipBits(byte[] input, Random rng, int start, int length, int flips)
    {
        var b = (byte[])input.Clone();
        if (length <= 0) return b;
        for (int i = 0; i < flips; i++)
            b[start + rng.Next(length)] ^= (byte)(1 << rng.Next(8));
        return b;
    }

    public static byte[] OverwriteBytes(byte[] input, Random rng, int start, int length, int count)
    {
        var b = (byte[])input.Clone();
        if (length <= 0) return b;
        for (int i = 0; i < count; i++)
            b[start + rng.Next(length)] = (byte)rng.Next(256);
        return b;
    }

    public static byte[] Put32(byte[] input, int offset, uint value)
    {
        var b = (byte[])input.Clone();
        if (offset >= 0 && offset + 4 <= b.Length)
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(offset), value);
        return b;
    }

    public static byte[] Put16(byte[] input, int offset, ushort value)
    {
        var b = (byte[])input.Clone();
        if (offset >= 0 && offset + 2 <= b.Length)
            System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(offset), value);
        return b;
    }

    public static uint Pick32(Random rng, int fileLength)
    {
        int r = rng.Next(Interesting32.Length + 4);
        if (r < Interesting32.Length) return Interesting32[r];
        return (r - Interesting32.Length) switch
        {
            0 => (uint)fileLength,
            1 => (uint)fileLength + 1,
            2 => (uint)Math.Max(0, fileLength - 1),
            _ => (uint)rng.NextInt64(0, 1L << 32),
        };
    }
}
