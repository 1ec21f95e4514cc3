using System.IO.Hashing;
using System.Runtime.Intrinsics.X86;
using Replayvisor.Engine.State;

namespace Replayvisor.Engine.Tests.Hashing;

/// <summary>The state hash's own XXH3-128 gives System.IO.Hashing's XxHash128 values, one-shot and streamed in any pieces.</summary>
public class LongXxHash128Tests
{
    private static byte[] Random(int n, int seed)
    {
        var b = new byte[n];
        new Random(seed).NextBytes(b);
        return b;
    }

    /// <summary>Every length over 240 up to past two blocks, then the edges of stripes and blocks further out.</summary>
    public static IEnumerable<int> Lengths()
    {
        for (int n = 241; n <= 2200; n++) yield return n;
        foreach (int block in new[] { 3, 4, 16, 64 })
            foreach (int d in new[] { -65, -64, -63, -1, 0, 1, 63, 64, 65 }) yield return block * 1024 + d;
        yield return 4096;
        yield return 200_000;
    }

    [Fact]
    public void OneShotEqualsTheLibrarysHash()
    {
        byte[] data = Random(200_000, 1);
        foreach (int n in Lengths())
            Assert.True(XxHash128.HashToUInt128(data.AsSpan(0, n)) == LongXxHash128.Hash(data.AsSpan(0, n)), $"length {n}");
    }

    [Fact]
    public void StreamedInAnyPiecesEqualsTheLibrarysHash()
    {
        byte[] data = Random(200_000, 2);
        var rng = new Random(3);
        int[] sizes = [0, 1, 2, 63, 64, 65, 100, 127, 128, 129, 1023, 1024, 1025, 5000];
        foreach (int n in Lengths())
        {
            var h = new LongXxHash128();
            int at = 0;
            while (at < n)
            {
                int piece = Math.Min(n - at, rng.Next(3) == 0 ? rng.Next(20_000) : sizes[rng.Next(sizes.Length)]);
                h.Append(data.AsSpan(at, piece));
                at += piece;
            }
            Assert.Equal(n, h.Length);
            Assert.True(XxHash128.HashToUInt128(data.AsSpan(0, n)) == h.Finish(), $"length {n}");
        }
    }

    [Fact]
    public void FinishLeavesTheStreamOpen()
    {
        byte[] data = Random(3000, 4);
        var h = new LongXxHash128();
        h.Append(data.AsSpan(0, 1000));
        Assert.Equal(XxHash128.HashToUInt128(data.AsSpan(0, 1000)), h.Finish());
        h.Append(data.AsSpan(1000));
        Assert.Equal(XxHash128.HashToUInt128(data), h.Finish());
    }

    [Fact]
    public void BytesAreTheLibrarysBigEndianForm()
    {
        byte[] data = Random(5000, 5);
        Assert.Equal(XxHash128.Hash(data), LongXxHash128.ToBytes(LongXxHash128.Hash(data)));
    }

    [Fact]
    public void ShortInputsAreRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => LongXxHash128.Hash(new byte[240]));
        var h = new LongXxHash128();
        h.Append(new byte[240]);
        Assert.Throws<InvalidOperationException>(() => h.Finish());
    }

    /// <summary>The scalar stripe loop (machines without AVX2) and, where the machine has it, the vector one, each against the library.</summary>
    [Fact]
    public void BothStripeLoopsGiveTheLibrarysHash()
    {
        byte[] data = Random(20_000, 6);
        bool[] loops = Avx2.IsSupported ? [false, true] : [false];
        foreach (bool vectors in loops)
            foreach (int n in Lengths().Where(n => n <= data.Length))
                Assert.True(XxHash128.HashToUInt128(data.AsSpan(0, n)) == LongXxHash128.Hash(data.AsSpan(0, n), vectors), $"length {n}, vectors {vectors}");
    }
}
