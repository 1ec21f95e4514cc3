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

    [Fact]
    public void RunsHashedInPlaceGiveTheHashOfTheSameBytesCopied()
    {
        var rng = new Random(11);
        byte[] big = new byte[40_000], other = new byte[CanonicalWriter.InPlaceMin], small = new byte[CanonicalWriter.InPlaceMin - 1];
        rng.NextBytes(big); rng.NextBytes(other); rng.NextBytes(small);
        var copied = new CanonicalWriter(new byte[64]);
        var inPlace = new CanonicalWriter(new byte[64]);
        foreach (var w in new[] { copied, inPlace })
        {
            w.Tag("head");
            w.U32(7);
        }
        copied.Raw(big); inPlace.RawInPlace(big);
        copied.Raw(big); inPlace.RawInPlace(big); // two runs in a row, nothing gathered between them
        copied.U64(0x0102030405060708); inPlace.U64(0x0102030405060708);
        copied.Raw(small); inPlace.RawInPlace(small); // too short: copied
        copied.Raw(other); inPlace.RawInPlace(other);
        copied.Tag("tail"); inPlace.Tag("tail");
        Assert.Equal(copied.Length, inPlace.Length);
        byte[] expected = copied.Finish();
        Assert.Equal(expected, XxHash128.Hash(copied.Scratch.AsSpan(0, (int)copied.Length)));
        Assert.Equal(expected, inPlace.Finish());
        // The buffer held only what was not hashed in place.
        Assert.Equal(8 + small.Length, inPlace.Peak); // the most gathered between two runs
    }

    [Fact]
    public void AWriterWithoutRunsInPlaceHashesItsBuffer()
    {
        var w = new CanonicalWriter();
        w.Tag("x");
        w.Raw(new byte[100]);
        Assert.Equal(XxHash128.Hash([(byte)'x', 0, .. new byte[100]]), w.Finish());
        Assert.Equal(102, w.Peak);
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

/// <summary>The machine's state hash gathers its encoding in a pooled buffer: what the pool's buffers held before must not matter.</summary>
public class PooledStateHashTests
{
    [Theory, InlineData(false), InlineData(true)]
    public void TheHashIsTheSameWhateverThePooledBufferHeld(bool pae)
    {
        byte[] image = Replayvisor.Engine.Tests.Boot.TestElf.Linux(pae).Build();
        var options = new Replayvisor.Engine.Machine.XenMachineOptions { MemoryMiB = 8 };
        var machine = new Replayvisor.Engine.Machine.XenMachine(image, options);
        byte[] first = machine.StateHash();
        for (int round = 0; round < 3; round++)
        {
            // Every buffer size the hash may rent, returned full of junk (the pool hands buffers back as they were left).
            for (int size = 1 << 12; size <= 1 << 22; size <<= 1)
            {
                byte[] junk = System.Buffers.ArrayPool<byte>.Shared.Rent(size);
                junk.AsSpan().Fill((byte)(0xA5 + round));
                System.Buffers.ArrayPool<byte>.Shared.Return(junk);
            }
            Assert.Equal(first, machine.StateHash());
            Assert.Equal(first, new Replayvisor.Engine.Machine.XenMachine(image, options).StateHash());
        }
    }
}
