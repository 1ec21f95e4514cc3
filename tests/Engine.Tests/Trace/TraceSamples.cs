using Replayvisor.Engine.Trace;

namespace Replayvisor.Engine.Tests.Trace;

/// <summary>Shared fixtures: a header, a guest image, one event of every kind, trace builders.</summary>
internal static class TraceSamples
{
    public static readonly byte[] Image = MakeImage();

    public static TraceHeader Header() => TraceHeader.Create("replayvisor 0.1.0+test", "hello.elf", Image, "xen-pv-x86_32",
        new Dictionary<string, string>
        {
            [RunOptionKeys.MemoryMib] = "64",
            [RunOptionKeys.Cmdline] = "console=hvc0",
            [RunOptionKeys.Clock] = "virtual",
            [RunOptionKeys.MaxInstructions] = "1000000",
        });

    public static readonly TraceSummary Summary = new(5000, ExitKind.GuestShutdown, ShutdownReason.PowerOff,
        Enumerable.Range(0, 16).Select(i => (byte)i).ToArray());

    public static IReadOnlyList<TraceEvent> OneOfEach() =>
    [
        new HypercallEvent(10, 18, [1, 2, 3, 4, 5, 6], -22),
        new HypercallEvent(20, 13, [0xc0001000, 2, 0, 0, 0, 0], 0,
            Multicall: [new MulticallEntry(1, 0), new MulticallEntry(26, -1)],
            Memory: [new GuestWrite(0xc0002000, new byte[] { 1, 2, 3 }), new GuestWrite(0xc0003000, new byte[] { 9 })],
            OutputDigest: 0x0123456789ABCDEF, Site: 0xc0104e62),
        new UpcallEvent(30, 0, [3, 7, 31]) { Eip = 0xc0104e62, Handler = 0xc0101800 },
        new TimeEvent(40, TimeKind.SystemTimeNs, 123_456_789_012),
        new TimeEvent(40, TimeKind.Tsc, ulong.MaxValue),
        new ConsoleInputEvent(50, "ls\n"u8.ToArray()),
        new ConsoleOutputEvent(60, "hello, world\n"u8.ToArray()),
        new AsyncEvent(70, AsyncKind.TimerExpiry, 4),
        new AsyncEvent(71, AsyncKind.ChaosDelay, 0, 250),
        new ExceptionEvent(80, 14, 0x6, 0xdeadbeef, 0xc0100123) { Handler = 0xc0103b30 },
        new FailsafeEvent(90, 0xc0100200, "ds reload failed"),
        new CheckpointEvent(100, Enumerable.Range(100, 16).Select(i => (byte)i).ToArray()),
        new ShutdownEvent(5000, ShutdownReason.Crash, ExitKind.DomainCrashed, "triple fault"),
    ];

    /// <summary>Hypercall and time events at increasing icounts.</summary>
    public static IEnumerable<TraceEvent> Many(int count) => Enumerable.Range(0, count).Select(i => i % 3 == 0
        ? new TimeEvent((ulong)i * 100, TimeKind.Tsc, (ulong)i * 7919)
        : (TraceEvent)new HypercallEvent((ulong)i * 100, i % 40, [(uint)i, 0, 1, 0, 0, 0], i % 5 - 2));

    public static byte[] Write(IEnumerable<TraceEvent> events, bool complete = true, TraceWriterOptions? options = null)
    {
        var stream = new MemoryStream();
        using (var writer = new TraceWriter(stream, Header(), Image, options, leaveOpen: true))
        {
            foreach (var traceEvent in events)
                writer.Append(traceEvent);
            if (complete)
                writer.Complete(Summary);
        }
        return stream.ToArray();
    }

    public static TraceReader Open(byte[] bytes) => TraceReader.Open(new MemoryStream(bytes, writable: false));

    private static byte[] MakeImage()
    {
        var image = new byte[10_000];
        for (var i = 0; i < image.Length; i++)
            image[i] = (byte)(i * 31 % 251);
        return image;
    }
}
