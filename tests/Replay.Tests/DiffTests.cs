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
}
