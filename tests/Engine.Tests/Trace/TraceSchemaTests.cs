using MessagePack;
using Replayvisor.Engine.Trace;
using Xunit;

namespace Replayvisor.Engine.Tests.Trace;

/// <summary>
/// Pins the on-disk encoding documented in docs/trace-format.md. If one of these fails, the
/// format changed: update the doc, and bump FormatVersion if old readers cannot read it.
/// </summary>
public sealed class TraceSchemaTests
{
    public static TheoryData<int, string> Encodings => new()
    {
        { 0, "9200990A1296010203040506EA9090000000" },
        { 1, "920099140D96CEC000100002000000000092920100921AFF9292CEC0002000C40301020392CEC0003000C40109CF0123456789ABCDEFCEC0104E6200" },
        { 2, "9201951E009303071FCEC0104E62CEC0101800" },
        { 3, "9202942800CF0000001CBE991A1400" },
        { 5, "92039432C4036C730A0000" },
        { 6, "9204933CC40D68656C6C6F2C20776F726C640A00" },
        { 8, "920595470200CCFA00" },
        { 9, "920697500E06CEDEADBEEFCEC010012300CEC0103B30" }, // key 6 Handler
        { 10, "9207945ACEC0100200B064732072656C6F6164206661696C656400" },
        { 11, "92099364C4106465666768696A6B6C6D6E6F7071727300" },
        { 12, "920896CD13880301AC747269706C65206661756C740000" }, // keys 4 Vcpu and 5 StopSite = 0
    };

    [Theory]
    [MemberData(nameof(Encodings))]
    public void Events_encode_as_documented(int sample, string hex)
    {
        var traceEvent = TraceSamples.OneOfEach()[sample];

        Assert.Equal(hex, Convert.ToHexString(MessagePackSerializer.Serialize(traceEvent, TraceMessagePack.Options)));
        Assert.Equal(traceEvent, MessagePackSerializer.Deserialize<TraceEvent>(Convert.FromHexString(hex), TraceMessagePack.Options));
    }

    [Fact]
    public void Readers_skip_unknown_trailing_fields_and_default_missing_ones()
    {
        var withExtraField = Convert.FromHexString("9202" + "95" + "28" + "00" + "CF0000001CBE991A14" + "00" + "05");
        var withoutArg = Convert.FromHexString("9205" + "93" + "46" + "00" + "04");

        Assert.Equal(new TimeEvent(40, TimeKind.SystemTimeNs, 123_456_789_012),
            MessagePackSerializer.Deserialize<TraceEvent>(withExtraField, TraceMessagePack.Options));
        Assert.Equal(new AsyncEvent(70, AsyncKind.TimerExpiry, 4, 0),
            MessagePackSerializer.Deserialize<TraceEvent>(withoutArg, TraceMessagePack.Options));
        // The vCPU key (docs/trace-format.md): present, it is read; absent, it is vCPU 0.
        var onVcpu3 = Convert.FromHexString("9204" + "93" + "3C" + "C401" + "41" + "03");
        Assert.Equal(new ConsoleOutputEvent(60, "A"u8.ToArray()) { Vcpu = 3 },
            MessagePackSerializer.Deserialize<TraceEvent>(onVcpu3, TraceMessagePack.Options));
        // A hypercall event of a trace written before keys 6 (output digest), 7 (call site) and 8 (vCPU) existed.
        var beforeOutputs = Convert.FromHexString("9200960A1296010203040506EA9090");
        Assert.Equal(new HypercallEvent(10, 18, [1, 2, 3, 4, 5, 6], -22, OutputDigest: 0, Site: 0),
            MessagePackSerializer.Deserialize<TraceEvent>(beforeOutputs, TraceMessagePack.Options));
    }

    [Fact]
    public void The_file_starts_with_the_magic_and_version_and_ends_with_the_footer()
    {
        var bytes = TraceSamples.Write(TraceSamples.OneOfEach());

        Assert.Equal("RVTRACE\0"u8.ToArray(), bytes[..8]);
        Assert.Equal([3, 0], bytes[8..10]);
        Assert.Equal([1, 0], bytes[10..12]); // first chunk: kind Header
        Assert.Equal("RVTEND\0\0"u8.ToArray(), bytes[^8..]);
    }

    [Fact]
    public void A_chunk_with_an_event_of_an_unknown_kind_is_damaged()
    {
        var payload = Convert.FromHexString("91" + "9263" + "9101");
        var chunk = ChunkCodec.Encode(ChunkKind.Events, payload);
        var header = ChunkHeader.Parse(chunk, 100, previousChain: 0);

        var ex = Assert.Throws<TraceFormatException>(() =>
            EventChunkDecoder.Decode(ChunkCodec.Decode(header, chunk.AsSpan(TraceLayout.ChunkHeaderSize), 100), 100));
        Assert.Equal(TraceError.DamagedChunk, ex.Error);
        Assert.Equal(100, ex.Offset);
    }

    [Fact]
    public void Reader_needs_a_seekable_stream()
    {
        Assert.Throws<ArgumentException>(() => TraceReader.Open(new UnseekableStream()));
    }

    private sealed class UnseekableStream : MemoryStream
    {
        public override bool CanSeek => false;
    }
}
