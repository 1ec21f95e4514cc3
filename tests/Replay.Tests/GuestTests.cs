using Replayvisor.Engine.Cpu;
using System.Text;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Xen;

namespace Replayvisor.Replay.Tests;

/// <summary>Every guest of guests/ checks one area of the Xen ABI and must pass on the model, PAE and non-PAE.</summary>
public class GuestTests
{
    public static IEnumerable<object[]> AllGuests() => Guests.All();

    [Theory]
    [MemberData(nameof(AllGuests))]
    public void GuestPassesAllItsChecks(string name, bool pae)
    {
        var m = new XenMachine(Guests.Image(name, pae), new XenMachineOptions { MemoryMiB = 32 });
        var console = new BufferConsoleSink();
        m.Hypervisor.ConsoleSink = console;
        if (name == "echo") m.PushConsoleInput(Guests.EchoInput);
        var exit = m.Run(500_000_000);
        string text = console.Text;
        Assert.True(exit.Kind == MachineExitKind.PoweredOff, $"{name}{(pae ? "-pae" : "")}: {exit}\n{text}");
        Assert.Contains($"ALL PASS {name}", text);
        Assert.DoesNotContain("FAIL", text);
        Assert.Contains("PASS " + name + ":", text);
    }

    /// <summary>
    /// Every guest ends in the same state at the same instruction count under every CPU tier,
    /// and under the compiled tier whatever the compile threshold (every block compiled before
    /// its first run, after a few runs, or never).
    /// </summary>
    [Theory]
    [MemberData(nameof(AllGuests))]
    public void EveryTierAndCompileThresholdRunAGuestIdentically(string name, bool pae)
    {
        byte[] Hash(CpuTier tier, int threshold)
        {
            var m = new XenMachine(Guests.Image(name, pae), new XenMachineOptions { MemoryMiB = 32, Tier = tier, CompileThreshold = threshold });
            m.Hypervisor.ConsoleSink = new BufferConsoleSink();
            if (name == "echo") m.PushConsoleInput(Guests.EchoInput);
            var exit = m.Run(500_000_000);
            Assert.Equal(MachineExitKind.PoweredOff, exit.Kind);
            if (tier == CpuTier.Compiled && threshold < int.MaxValue) Assert.True(m.Cpu.BlocksCompiled + m.Cpu.CompiledCodeReused > 0, "no block was compiled");
            return [.. m.StateHash(), .. BitConverter.GetBytes(m.Icount), .. Encoding.ASCII.GetBytes(exit.Detail)];
        }
        byte[] reference = Hash(CpuTier.BlockCache, 0);
        Assert.Equal(reference, Hash(CpuTier.Compiled, 0));
        Assert.Equal(reference, Hash(CpuTier.Compiled, 3));
        Assert.Equal(reference, Hash(CpuTier.Compiled, int.MaxValue));
        Assert.Equal(reference, Hash(CpuTier.Interpreter, 0));
    }
}
