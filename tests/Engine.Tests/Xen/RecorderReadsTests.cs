using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Memory;
using Replayvisor.Engine.Xen;

namespace Replayvisor.Engine.Tests.Xen;

/// <summary>
/// The reads the recorder makes at every event, written for speed, give what the plain reads give:
/// the upcall's pending-and-unmasked ports (a vector compare, then only the non-zero bytes) and physical RAM's 64-bit read.
/// </summary>
public class RecorderReadsTests
{
    [Theory]
    [InlineData(1, EventChannels.NrPorts)]
    [InlineData(2, EventChannels.NrPorts)]
    [InlineData(3, EventChannels.NrPorts)]
    [InlineData(4, 768)] // 512 ports a block, then 256
    [InlineData(5, 256)]
    public void PendingUnmaskedPortsAreThoseOfTheWordByWordScan(int seed, int ports)
    {
        var rng = new Random(seed);
        var memory = new PhysicalMemory(16);
        var si = new SharedInfoPage(memory, 5);
        for (int round = 0; round < 50; round++)
        {
            // Sparse, dense and empty words, in both arrays.
            for (int w = 0; w < EventChannels.NrPorts / 32; w++)
            {
                uint Bits() => rng.Next(4) switch { 0 => 0, 1 => uint.MaxValue, 2 => 1u << rng.Next(32), _ => (uint)rng.NextInt64(1L << 32) };
                memory.Write32(5 * 4096ul + SharedInfo.EvtchnPending + (ulong)w * 4, Bits());
                memory.Write32(5 * 4096ul + SharedInfo.EvtchnMask + (ulong)w * 4, Bits());
            }
            var expected = new List<uint>();
            for (int w = 0; w < ports / 32; w++)
                for (int b = 0; b < 32; b++)
                    if (((si.PendingWord(w) & ~si.MaskWord(w)) >> b & 1) != 0) expected.Add((uint)(w * 32 + b));
            var actual = new uint[ports];
            Assert.Equal(expected, actual[..si.PendingUnmasked(actual, ports)]);
        }
    }

    [Fact]
    public void A64BitReadIsTwo32BitReadsEverywhereIncludingPastTheEndOfRam()
    {
        var memory = new PhysicalMemory(2);
        var rng = new Random(7);
        for (ulong a = 0; a < 2 * 4096; a += 4) memory.Write32(a, (uint)rng.NextInt64(1L << 32));
        foreach (ulong pa in new ulong[] { 0, 1, 7, 4092, 4095, 8184, 8185, 8188, 8191, 8192, 9000, 1ul << 40 })
            Assert.Equal(memory.Read32(pa) | ((ulong)memory.Read32(pa + 4) << 32), memory.Read64(pa));
    }
}
