using System.Text;
using Xunit.Abstractions;
using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Session;
using Replayvisor.Engine.Trace;
using Replayvisor.Engine.Xen;
using Replayvisor.Record;

namespace Replayvisor.Replay.Tests;

/// <summary>
/// GRUB 2's i386-xen port, as Debian ships it, run as an external guest (guests/grub): each image
/// runs to its end, and is recorded under the host clock (with console input) and replayed
/// bit-exactly. Without network or cache the tests pass with a "GRUB NOT TESTED" line in their
/// output (test.sh prints the same line), and one test checks that the script said why.
/// </summary>
public class GrubGuestTests(ITestOutputHelper output)
{
    private const ulong Limit = 3_000_000_000;
    private static readonly byte[] KeyInput = "replay\r"u8.ToArray();

    private bool Available(out GrubImages.Build build)
    {
        build = GrubImages.Get();
        if (!build.Available) output.WriteLine($"GRUB NOT TESTED: {build.Status}");
        return build.Available;
    }

    [Fact]
    public void TheBuildScriptEitherBuiltTheImagesOrSaidWhyNot()
    {
        var build = GrubImages.Get();
        if (build.Available)
        {
            Assert.StartsWith("built grub-xen-bin ", build.Status);
            foreach (var name in new[] { "halt", "sleep", "key" })
                Assert.True(new FileInfo(build.Path(name)).Length > 4096, name);
        }
        else
        {
            Assert.Equal(3, build.ExitCode);
            Assert.StartsWith("unavailable: ", build.Status);
            Assert.True(build.Status.Length > "unavailable: ".Length + 10, build.Status);
        }
    }

    private static (MachineExit Exit, string Console, XenMachine Machine) Run(byte[] image, CpuTier tier = CpuTier.Compiled, byte[]? input = null)
    {
        var m = new XenMachine(image, new XenMachineOptions { MemoryMiB = 32, Tier = tier });
        var console = new BufferConsoleSink();
        m.Hypervisor.ConsoleSink = console;
        if (input != null) m.PushConsoleInput(input);
        var exit = m.Run(Limit);
        return (exit, console.Text, m);
    }

    [Fact]
    public void HaltPrintsThenPowersOffOnTheCompatAbi()
    {
        if (!Available(out var build)) return;
        var (exit, text, m) = Run(build.Image("halt"));
        Assert.True(exit.Kind == MachineExitKind.PoweredOff, $"{exit}\n{text}");
        Assert.Contains("Welcome to GRUB!", text);
        Assert.Contains("grub-halt: hello from GRUB i386-xen", text);
        Assert.Equal(XenAbi.Xen4_19, m.Hypervisor.Abi); // GRUB's PAE_MODE note "yes" (its descsz runs past the file)
    }

    [Fact]
    public void HaltRunsIdenticallyOnEveryCpuTier()
    {
        if (!Available(out var build)) return;
        byte[] Hash(CpuTier tier)
        {
            var (exit, _, m) = Run(build.Image("halt"), tier);
            Assert.Equal(MachineExitKind.PoweredOff, exit.Kind);
            return [.. m.StateHash(), .. BitConverter.GetBytes(m.Icount)];
        }
        byte[] reference = Hash(CpuTier.Interpreter);
        Assert.Equal(reference, Hash(CpuTier.BlockCache));
        Assert.Equal(reference, Hash(CpuTier.Compiled));
    }

    [Fact]
    public void KeyReadsALineFromTheConsoleRingAndPrintsIt()
    {
        if (!Available(out var build)) return;
        var (exit, text, _) = Run(build.Image("key"), input: KeyInput);
        Assert.True(exit.Kind == MachineExitKind.PoweredOff, $"{exit}\n{text}");
        Assert.Contains("grub-key: you typed [replay]", text);
    }

    [Fact]
    public void SleepWaitsOneSecondOfVirtualTime()
    {
        if (!Available(out var build)) return;
        var (exit, text, _) = Run(build.Image("sleep"));
        Assert.True(exit.Kind == MachineExitKind.PoweredOff, $"{exit}\n{text}");
        Assert.Contains("grub-sleep: awake", text);
        // The virtual clock is one nanosecond per instruction and GRUB busy-waits on the TSC.
        Assert.InRange(exit.Icount, 1_000_000_000ul, 1_100_000_000ul);
    }

    [Theory]
    [InlineData("halt")]
    [InlineData("sleep")]
    [InlineData("key")]
    public void RecordedUnderTheHostClockReplaysBitExactly(string name)
    {
        if (!Available(out var build)) return;
        var trace = new MemoryStream();
        var console = new MemoryStream();
        LiveResult result;
        using (var s = new LiveSession(new LiveRequest
        {
            Kernel = build.Image(name),
            ImageName = $"grub-{name}.elf",
            Machine = new XenMachineOptions { MemoryMiB = 32 },
            MaxInstructions = Limit,
            Clock = ClockKind.Host,
            CheckpointInterval = 1_000_000,
            Trace = trace,
            ConsoleOutput = console,
            Stdin = name == "key" ? new MemoryStream(KeyInput) : null,
        }))
            result = s.Run();
        string text = Encoding.ASCII.GetString(console.ToArray());
        Assert.True(result.Exit.Kind == MachineExitKind.PoweredOff, $"{name}: {result.Exit}\n{text}");
        Assert.Contains(name == "key" ? "you typed [replay]" : name == "sleep" ? "awake" : "hello from GRUB", text);

        using (var reader = TraceReader.Open(new MemoryStream(trace.ToArray())))
        {
            var events = reader.ReadEvents().ToList();
            Assert.Contains(events, e => e is TimeEvent);
            if (name == "key") Assert.Contains(events, e => e is ConsoleInputEvent);
        }
        var r = Recordings.Replay(trace.ToArray());
        Assert.True(r.Divergence == null, $"{name}: {r.Report}");
        Assert.Equal(MachineExitKind.PoweredOff, r.Exit.Kind);
        Assert.Equal(result.Exit.Icount, r.Exit.Icount);
    }
}
