using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Session;
using Replayvisor.Engine.Trace;
using Replayvisor.Engine.Xen;
using Replayvisor.Engine.Xen.Hypercalls;
using Replayvisor.Record;

namespace Replayvisor.Replay.Tests;

/// <summary>Hypercall events carry what each call wrote into guest memory (a digest, or the bytes) and where it was issued.</summary>
public class HypercallOutputTests
{
    private static readonly Lazy<byte[]> Events = new(() => Recordings.Record("events", true).Trace);

    private static List<HypercallEvent> Hypercalls(byte[] trace)
    {
        using var reader = TraceReader.Open(new MemoryStream(trace));
        return reader.ReadEvents().OfType<HypercallEvent>().ToList();
    }

    [Fact]
    public void ADifferenceOnlyInAnOutputBufferIsADivergence()
    {
        HypercallEvent? target = null;
        byte[] bad = Recordings.Rewrite(Events.Value, e =>
        {
            if (target == null && e is HypercallEvent { OutputDigest: not 0 } h) { target = h; return h with { OutputDigest = h.OutputDigest ^ 1 }; }
            return e;
        });
        Assert.NotNull(target);
        var r = Recordings.Replay(bad);
        Assert.NotNull(r.Divergence);
        Assert.Equal(target!.Icount, r.Divergence!.Icount);
        Assert.Equal(target, r.Divergence.Actual); // same number, arguments and result: only the written bytes tell them apart
    }

    [Fact]
    public void HypercallsAreAttributedToTheGuestFunctionThatCalledThem()
    {
        var symbols = GuestSymbols.FromImage(Guests.Image("events", true));
        var calls = Hypercalls(Events.Value);
        Assert.NotEmpty(calls);
        foreach (var h in calls)
        {
            string function = symbols.FunctionOf(h.Site);
            Assert.NotEqual("", function);
            // A call through a hypercall-page stub is attributed to its caller, never to the stub (iret does not return).
            if (h.Number != HypercallPage.IretHypercall) Assert.NotEqual("hypercall_page", function);
        }
        Assert.Contains(calls, h => symbols.FunctionOf(h.Site) == "guest_main");
    }

    [Fact]
    public void WithHypercallDataTheTraceHoldsTheBytesAndReplaysBitExactly()
    {
        var trace = new MemoryStream();
        using (var s = new LiveSession(new LiveRequest
        {
            Kernel = Guests.Image("events", false), ImageName = "events.elf", Machine = new XenMachineOptions { MemoryMiB = 32 },
            CheckpointInterval = 1_000_000, Trace = trace, ConsoleOutput = new MemoryStream(),
            HypercallOutputs = HypercallOutputLevel.Data,
        }))
            s.Run();
        var calls = Hypercalls(trace.ToArray());
        var withData = calls.Where(h => h.Memory.Count > 0).ToList();
        Assert.NotEmpty(withData);
        foreach (var h in calls)
        {
            var writes = h.Memory.AsSpan().ToArray().Select(w => new GuestWriteRecord(w.Address, w.Bytes.ToArray())).ToList();
            Assert.Equal(HypercallOutputCapture.Digest(writes), h.OutputDigest);
        }
        var r = Recordings.Replay(trace.ToArray());
        Assert.Null(r.Divergence);
    }

    [Theory]
    [MemberData(nameof(Guests.All), MemberType = typeof(Guests))]
    public void EveryGuestWritesOnlyIntoDeclaredBuffers(string name, bool pae)
    {
        var undeclared = new List<string>();
        long captured = 0;
        using var s = new LiveSession(new LiveRequest
        {
            Kernel = Guests.Image(name, pae), ImageName = name + ".elf", Machine = new XenMachineOptions { MemoryMiB = 32 },
            MaxInstructions = 500_000_000, Trace = new MemoryStream(), ConsoleOutput = new MemoryStream(),
            Stdin = name == "echo" ? new MemoryStream(Guests.EchoInput) : null,
        });
        var hv = s.Machine.Hypervisor;
        var recorder = hv.Observer!;
        hv.Observer = new Counting(recorder, n => captured += n);
        hv.UndeclaredWrite = (nr, w) => undeclared.Add($"{HypercallTable.NameOf(nr)} wrote {w.Bytes.Length} bytes at 0x{w.Address:x8}");
        s.Run();
        Assert.Empty(undeclared);
        if (name is "events" or "sched" or "multicall") Assert.True(captured > 0, $"{name} wrote no hypercall outputs");
    }

    /// <summary>
    /// A call whose table row declares no written buffer skips the write log when recording; the
    /// UndeclaredWrite hook turns the full capture back on for every call. The traces must be the
    /// same bytes either way (digests, sites and, with --hypercall-data, the bytes themselves).
    /// </summary>
    [Theory]
    [InlineData("ticker", true, HypercallOutputLevel.Digest)]
    [InlineData("events", false, HypercallOutputLevel.Digest)]
    [InlineData("events", true, HypercallOutputLevel.Data)]
    [InlineData("multicall", true, HypercallOutputLevel.Data)]
    [InlineData("sched", false, HypercallOutputLevel.Digest)]
    [InlineData("vcpuop", true, HypercallOutputLevel.Data)]
    [InlineData("smp", true, HypercallOutputLevel.Digest)]
    public void CallsThatDeclareNoOutputAreRecordedAsByTheFullCapture(string name, bool pae, HypercallOutputLevel outputs)
    {
        byte[] Record(bool fullCapture)
        {
            var trace = new MemoryStream();
            using (var s = new LiveSession(new LiveRequest
            {
                Kernel = Guests.Image(name, pae), ImageName = name + ".elf", Machine = new XenMachineOptions { MemoryMiB = 32 },
                MaxInstructions = 500_000_000, CheckpointInterval = 1_000_000, Trace = trace, ConsoleOutput = new MemoryStream(),
                HypercallOutputs = outputs, FlushInterval = TimeSpan.FromDays(1), // chunks cut by wall time would differ between the two
            }))
            {
                if (fullCapture) s.Machine.Hypervisor.UndeclaredWrite = (_, _) => { };
                s.Run();
            }
            return trace.ToArray();
        }
        byte[] fast = Record(fullCapture: false);
        Assert.Equal(Record(fullCapture: true), fast);
        var calls = Hypercalls(fast);
        Assert.Contains(calls, h => HypercallTable.Instance[h.Number] is { DeclaresWrites: false } && h.Site != 0);
        if (name is "events" or "multicall" or "sched") Assert.Contains(calls, h => h.OutputDigest != 0);
    }

    [Fact]
    public void TracesRecordedBeforeHypercallOutputsStillReplay()
    {
        // Such a trace has no hypercall-outputs header option: its events carry no digest or site, and replay expects none.
        byte[] old = Recordings.Rewrite(Events.Value, e => e is HypercallEvent h ? h with { OutputDigest = 0, Site = 0, Memory = default } : e);
        using var reader = TraceReader.Open(new MemoryStream(old));
        var h0 = reader.Header;
        var header = new TraceHeader(h0.EngineBuild, h0.GuestImageSha256, h0.GuestImageName, h0.GuestKind,
            h0.Options.Where(kv => kv.Key != RunOptionKeys.HypercallOutputs).ToDictionary(kv => kv.Key, kv => kv.Value));
        var output = new MemoryStream();
        using (var w = new TraceWriter(output, header, reader.GuestImage.Span, leaveOpen: true))
        {
            foreach (var e in reader.ReadEvents()) w.Append(e);
            w.Complete(reader.Summary!);
        }
        Assert.Null(Recordings.Replay(output.ToArray()).Divergence);
        Assert.NotNull(Recordings.Replay(old).Divergence); // the same events under a header that promises digests do diverge
    }

    private sealed class Counting(IXenObserver inner, Action<int> count) : IXenObserver
    {
        public void OnHypercall(ulong icount, int number, in HypercallArgs args, long result, ReadOnlySpan<MulticallResult> entries, HypercallOutput output)
        {
            count(output.Writes.Count);
            inner.OnHypercall(icount, number, args, result, entries, output);
        }
        public void OnUpcallAt(ulong icount, int vcpu, ReadOnlySpan<uint> ports, uint interrupted, uint handler) =>
            inner.OnUpcallAt(icount, vcpu, ports, interrupted, handler);
        public void OnException(ulong icount, int vector, uint errorCode, uint cr2, uint eip) => inner.OnException(icount, vector, errorCode, cr2, eip);
        public void OnExceptionAt(ulong icount, int vector, uint errorCode, uint cr2, uint eip, uint handler) =>
            inner.OnExceptionAt(icount, vector, errorCode, cr2, eip, handler);
        public void OnFailsafe(ulong icount, uint eip, string cause) => inner.OnFailsafe(icount, eip, cause);
        public void OnConsoleOutput(ulong icount, ReadOnlySpan<byte> bytes) => inner.OnConsoleOutput(icount, bytes);
        public void OnConsoleInput(ulong icount, ReadOnlySpan<byte> bytes) => inner.OnConsoleInput(icount, bytes);
        public void OnShutdown(ulong icount, ShutdownKind kind, string detail) => inner.OnShutdown(icount, kind, detail);
    }
}
