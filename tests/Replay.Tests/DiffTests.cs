using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Inputs;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Session;
using Replayvisor.Engine.Trace;
using Replayvisor.Record;
using Replayvisor.Replay.Diff;

namespace Replayvisor.Replay.Tests;

/// <summary>`replayvisor diff` below the command line: alignment of two builds, identical runs, and pinpointing an engine perturbation.</summary>
public class DiffTests
{
    private static byte[] Record(string name, bool pae, ulong checkpoints = 20_000, HypercallOutputLevel outputs = HypercallOutputLevel.Digest,
        Func<IRunInputs, IRunInputs>? wrap = null)
    {
        var trace = new MemoryStream();
        using var s = new LiveSession(new LiveRequest
        {
            Kernel = Guests.Image(name, pae), ImageName = name + (pae ? "-pae" : "") + ".elf", Machine = new XenMachineOptions { MemoryMiB = 32 },
            CheckpointInterval = checkpoints, Trace = trace, ConsoleOutput = new MemoryStream(), HypercallOutputs = outputs, WrapInputs = wrap,
        });
        s.Run();
        return trace.ToArray();
    }

    private static DiffSide Side(string name, byte[] trace) => new(name, TraceReader.Open(new MemoryStream(trace)));

    [Fact]
    public void TwoBuildsDifferingInOneFunctionAreAlignedAndTheFunctionIsNamed()
    {
        var r = TraceDiff.Compare(Side("a.rvt", Record("variant-a", false)), Side("b.rvt", Record("variant-b", false)), context: 3, pinpoint: false);
        Assert.False(r.Identical);
        Assert.False(r.SameImage);
        var first = r.Lines[r.FirstDifference];
        Assert.Equal(AlignedLine.OnlyB, first.Op);
        Assert.Equal("report_progress", first.B!.Function);
        Assert.Equal("xen_version", first.B.Hypercall);
        // Everything else lines up: only that one event is unmatched, and the console is the same.
        Assert.Single(r.Lines, l => l.Op != AlignedLine.Same);
        Assert.Empty(r.ConsoleHunks);
        Assert.Equal(new DiffCount("xen_version", 1, 2), r.ByHypercall.Single(c => c.Name == "xen_version"));
        Assert.Single(r.Hunks);
        // Each side's events carry that run's own instruction counts.
        var console = r.Lines.Last(l => l.Op == AlignedLine.Same && l.A!.Kind == DiffEvents.Console);
        Assert.True(console.B!.Icount > console.A!.Icount);
    }

    [Fact]
    public void AnEventOfAnotherVcpuIsADifferenceAndSaysWhichVcpu()
    {
        // guests/smp with --vcpus N: the same call made by vCPU 1 in one run and by vCPU 2 in the other is
        // not the same event (upcalls already said which vCPU; hypercalls, exceptions and failsafes did not).
        var symbols = GuestSymbols.FromImage(Guests.Image("smp", true));
        List<DiffEvent> Run(int vcpu) => DiffEvents.From(
        [
            new HypercallEvent(100, 29, new uint[] { 3, 0xc0149ca8, 0, 0, 0, 0 }, 0) { Vcpu = vcpu },
            new ExceptionEvent(200, 14, 2, 0x1000, 0xc0100000) { Vcpu = vcpu },
            new FailsafeEvent(300, 0xc0100000, "ds") { Vcpu = vcpu },
        ], symbols);
        List<DiffEvent> zero = Run(0), one = Run(1), two = Run(2);
        for (int i = 0; i < 3; i++)
        {
            Assert.NotEqual(one[i].Key, two[i].Key);
            Assert.EndsWith(" [vcpu 1]", one[i].Text);
            Assert.EndsWith(" [vcpu 2]", two[i].Text);
            Assert.DoesNotContain("vcpu", zero[i].Text); // one-vCPU runs read as before
        }
    }

    [Fact]
    public void AContextLargerThanTheRunIsTheWholeAlignmentInOneHunk()
    {
        // `diff --context 2147483647`: end + context overflowed int, the hunk's stop went negative and the
        // next index read outside the list (internal error, exit 70).
        DiffEvent E(string key) => new(DiffEvents.Console, key, key, 0, "");
        var lines = new List<AlignedLine>
        {
            new(AlignedLine.Same, E("a"), E("a")), new(AlignedLine.OnlyA, E("b"), null), new(AlignedLine.Same, E("c"), E("c")),
            new(AlignedLine.OnlyB, null, E("d")), new(AlignedLine.Same, E("e"), E("e")),
        };
        foreach (int context in new[] { int.MaxValue, int.MaxValue / 2 + 1, 1_000_000 })
        {
            var hunk = Assert.Single(EventAlignment.Hunks(lines, context));
            Assert.Equal(lines, hunk.Lines);
            Assert.Equal((1, 4, 1, 4), (hunk.StartA, hunk.CountA, hunk.StartB, hunk.CountB));
        }
    }

    [Fact]
    public void TheSameImageUnderOptionsThatCannotChangeItsRunIsIdentical()
    {
        byte[] a = Record("sched", true, checkpoints: 1_000_000);
        byte[] b = Record("sched", true, checkpoints: 3_000_000, outputs: HypercallOutputLevel.Data);
        var r = TraceDiff.Compare(Side("a.rvt", a), Side("b.rvt", b), context: 3, pinpoint: true);
        Assert.True(r.Identical, string.Join("\n", r.Lines.Where(l => l.Op != AlignedLine.Same).Take(3)));
        Assert.True(r.SameImage);
        Assert.Null(r.FirstEvent);
        Assert.Null(r.Pinpoint);
    }

    [Fact]
    public void AnEnginePerturbationIsPinpointedToTheInstructionAndRegister()
    {
        const ulong At = 75_000;
        const uint Mask = 0x1;
        byte[] a = Record("variant-a", false);
        byte[] b = Record("variant-a", false, wrap: i => new FlipEdi(i, At, Mask));
        var r = TraceDiff.Compare(Side("a.rvt", a), Side("b.rvt", b), context: 3, pinpoint: true,
            new PinpointOptions { WrapInputsB = i => new FlipEdi(i, At, Mask) });
        Assert.False(r.Identical);
        Assert.True(r.SameImage);
        Assert.NotNull(r.FirstEvent);
        Assert.True(r.Pinpoint != null, $"{r.PinpointError}; first event {r.FirstEvent}; ends {r.A.FinalIcount} {r.B.FinalIcount}");
        var p = r.Pinpoint!;
        // The state before instruction At is the same in both runs; after it EDI differs by the flipped bit.
        Assert.Equal(At, p.Icount);
        var edi = Assert.Single(p.Registers, x => x.Name == "edi");
        Assert.Equal(Mask, edi.A ^ edi.B);
        Assert.Equal(p.A.Eip, p.B.Eip);
        Assert.Contains("cpu", p.StateParts);
        Assert.Contains("<", p.A.Instruction); // disassembled with symbol+offset
        Assert.True(p.StartIcount > 0 && p.StartIcount <= At && At < p.EndIcount, $"re-executed from {p.StartIcount} to {p.EndIcount}");
        // Each run reached the window's start once; after that every pass restored a snapshot taken
        // inside the window, so each pass cost at most the window per run, not the divergence's count.
        Assert.Equal(2 * p.StartIcount, p.InstructionsExecuted - p.WindowInstructions);
        ulong window = p.EndIcount - p.StartIcount;
        Assert.True(p.Passes > 3, $"{p.Passes} passes");
        Assert.True(p.WindowInstructions <= 2 * (ulong)p.Passes * window, $"{p.WindowInstructions:N0} instructions re-executed in a window of {window:N0}");
    }

    /// <summary>The recording written again in chunks of <paramref name="eventsPerChunk"/> events (<paramref name="events"/> instead of its own when given).</summary>
    private static byte[] Rewritten(byte[] trace, int eventsPerChunk, IEnumerable<TraceEvent>? events = null)
    {
        using var reader = TraceReader.Open(new MemoryStream(trace));
        var output = new MemoryStream();
        using (var w = new TraceWriter(output, reader.Header, reader.GuestImage.Span, new TraceWriterOptions { MaxChunkEvents = eventsPerChunk }, leaveOpen: true))
        {
            foreach (var e in events ?? reader.ReadEvents()) w.Append(e);
            w.Complete(reader.Summary!);
        }
        return output.ToArray();
    }

    /// <summary>The trace cut before its chunk <paramref name="chunk"/>, as a recorder killed then leaves it (docs/record-replay.md).</summary>
    private static byte[] CutBefore(byte[] trace, int chunk)
    {
        using var reader = TraceReader.Open(new MemoryStream(trace));
        return trace[..(int)reader.Index[chunk].Offset];
    }

    /// <summary>
    /// A killed recording (cut after any chunk) against the whole run: the runs agree as far as it goes, which is
    /// neither identical nor a difference, and what the whole run did after its end is not compared.
    /// </summary>
    [Fact]
    public void AKilledRecordingEndsEarlyAtEveryChunkBoundaryAndIsNeverADifference()
    {
        byte[] full = Rewritten(Record("sched", true), eventsPerChunk: 16);
        using var reader = TraceReader.Open(new MemoryStream(full));
        Assert.True(reader.Index.Count > 10, $"{reader.Index.Count} chunks");
        for (int chunk = 1; chunk < reader.Index.Count; chunk++)
        {
            byte[] cut = CutBefore(full, chunk);
            foreach (bool cutIsA in new[] { false, true })
            {
                var r = cutIsA ? TraceDiff.Compare(Side("cut.rvt", cut), Side("full.rvt", full), 3, pinpoint: true)
                    : TraceDiff.Compare(Side("full.rvt", full), Side("cut.rvt", cut), 3, pinpoint: true);
                string at = $"cut before chunk {chunk}, cut is {(cutIsA ? "A" : "B")}";
                Assert.True(r.AgreeToEarlyEnd, at);
                Assert.False(r.Identical, at);
                Assert.Equal(-1, r.FirstDifference);
                Assert.Empty(r.Hunks);
                Assert.Empty(r.ConsoleHunks);
                Assert.Null(r.FirstEvent);
                Assert.Null(r.Pinpoint);
                Assert.Null(r.PinpointError);
                var end = Assert.IsType<EarlyEnd>(r.EndsEarly);
                Assert.Equal(cutIsA, end.IsA);
                Assert.Equal("cut.rvt", end.Trace.Path);
                var whole = cutIsA ? r.B : r.A;
                Assert.Equal(whole.Events.Count, r.Lines.Count + end.NotCompared);
                Assert.Equal(reader.Index[chunk - 1].LastIcount, end.Trace.FinalIcount);
            }
        }
    }

    /// <summary>A line the recorder's end cut in two ("hel" of "hello") agrees with the whole line: the rest was never recorded.</summary>
    [Fact]
    public void AConsoleLineCutShortByTheRecordersEndStillAgrees()
    {
        byte[] source = Record("hello", false);
        HypercallEvent Write(ulong at, int n) => new(at, 18, new uint[] { 0, (uint)n, 0xc0140000 }, n);
        TraceEvent[] events =
        [
            new ConsoleOutputEvent(100, "hel"u8.ToArray()), Write(100, 3),
            new ConsoleOutputEvent(200, "lo\n"u8.ToArray()), Write(200, 3),
            new ConsoleOutputEvent(300, "bye\n"u8.ToArray()), Write(300, 4),
        ];
        byte[] full = Rewritten(source, eventsPerChunk: 2, events);
        byte[] cut = CutBefore(full, 1);
        var r = TraceDiff.Compare(Side("full.rvt", full), Side("cut.rvt", cut), 3, pinpoint: false);
        Assert.True(r.B.UnterminatedLine);
        Assert.True(r.AgreeToEarlyEnd, string.Join("\n", r.Lines.Select(l => $"{l.Op} {l.A?.Text} | {l.B?.Text}")));
        Assert.Equal(4, r.EndsEarly!.NotCompared); // "hello", the second write, "bye", the third write
        // A cut line that is not the start of the other run's next line is a difference.
        TraceEvent[] other = [new ConsoleOutputEvent(100, "hi!"u8.ToArray()), .. events.Skip(1)];
        var d = TraceDiff.Compare(Side("other.rvt", Rewritten(source, 2, other)), Side("cut.rvt", cut), 3, pinpoint: false);
        Assert.False(d.AgreeToEarlyEnd);
        Assert.False(d.Identical);
        Assert.True(d.FirstDifference >= 0);
    }
}
