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

    [Fact]
    public void InterpreterAndBlockCacheRunAGuestIdentically()
    {
        byte[] Hash(bool cache)
        {
            var m = new XenMachine(Guests.Image("pagetables", true), new XenMachineOptions { MemoryMiB = 32, UseBlockCache = cache });
            m.Hypervisor.ConsoleSink = new BufferConsoleSink();
            var exit = m.Run(500_000_000);
            Assert.Equal(MachineExitKind.PoweredOff, exit.Kind);
            return [.. m.StateHash(), .. BitConverter.GetBytes(m.Icount), .. Encoding.ASCII.GetBytes(exit.Detail)];
        }
        Assert.Equal(Hash(true), Hash(false));
    }
}
