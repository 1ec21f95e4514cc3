using System.Buffers.Binary;
using System.IO.Hashing;
using Replayvisor.Engine.State;

namespace Replayvisor.Engine.Tests.Hashing;

/// <summary>The canonical encoding is gathered in one buffer and hashed in one call: it must equal the field-by-field encoding hashed as a stream.</summary>
public class CanonicalWriterTests
{
    [Fact]
    public void OneShotHashEqualsTheStreamedEncodingAcrossBufferGrowth()
    {
        var w = new CanonicalWriter(new byte[64]); // grows several times
        var expected = new List<byte>();
        var rng = new Random(7);
        for (int i = 0; i < 5000; i++)
        {
            uint v = (uint)rng.Next();
            w.Tag("t");
            expected.AddRange([(byte)'t', 0]);
            w.U32(v);
            expected.AddRange(Le(v));
            var f = w.Fixed(3);
            f[0] = 1; f[1] = 2; f[2] = (byte)i;
            expected.AddRange([1, 2, (byte)i]);
            var u = new UInt128((ulong)i, v);
            w.U128(u);
            var b = new byte[16];
            BinaryPrimitives.WriteUInt128LittleEndian(b, u);
            expected.AddRange(b);
        }
        var raw = new byte[20000];
        rng.NextBytes(raw);
        w.Bytes(raw);
        expected.AddRange(Le((uint)raw.Length));
        expected.AddRange(raw);

        var streamed = new XxHash128();
        foreach (var piece in expected.Chunk(1000)) streamed.Append(piece);
        Assert.Equal(streamed.GetCurrentHash(), w.Finish());
        Assert.True(w.Scratch.Length >= expected.Count);
    }

    private static byte[] Le(uint v)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, v);
        return b;
    }

    [Fact]
    public void FixedRefusesLongRecords() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new CanonicalWriter().Fixed(257));
}
