using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Xen;
using static Replayvisor.Engine.Tests.Xen.XenTestGuest;

namespace Replayvisor.Engine.Tests.Xen;

/// <summary>Whatever a guest passes, the model answers with an error, a bounce or a domain crash — never a .NET exception.</summary>
public class HostileGuestTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void RandomHypercallsNeverThrow(int seed)
    {
        var rng = new Random(seed);
        var m = new XenTestGuest().Main(a => Shutdown(a)).Machine();
        // Scratch filled with noise so pointer arguments meet garbage structures.
        var noise = new byte[0x4000];
        rng.NextBytes(noise);
        Write(m, Scratch, noise);
        uint[] pointers = [0, Scratch, Scratch + 0x3FF0, 0x10000000, 0xF57FFFF0, 0xFFFFFFF0, DataPage];
        uint Arg() => rng.Next(4) switch
        {
            0 => pointers[rng.Next(pointers.Length)],
            1 => (uint)rng.Next(16),
            2 => (uint)rng.Next(1100),
            _ => (uint)rng.NextInt64(0, 1L << 32),
        };
        for (int i = 0; i < 3000; i++)
        {
            int nr = rng.Next(70);
            if (nr is 6 or 29 && rng.Next(4) != 0) continue; // let shutdowns happen only now and then
            var args = new HypercallArgs(Arg(), Arg(), Arg(), Arg(), Arg(), Arg());
            m.Hypervisor.Call(nr, args);
        }
    }

    [Theory]
    [InlineData(7)]
    [InlineData(8)]
    public void RandomEventsNeverThrow(int seed)
    {
        var rng = new Random(seed);
        var image = new XenTestGuest().Main(a => Shutdown(a)).BuildImage(true);
        for (int round = 0; round < 40; round++)
        {
            var m = new Replayvisor.Engine.Machine.XenMachine(image, new Replayvisor.Engine.Machine.XenMachineOptions { MemoryMiB = 4 });
            var hv = m.Hypervisor;
            for (int v = 0; v < 256; v++)
                hv.Vcpu.Traps[v] = new TrapInfo
                {
                    Flags = (byte)rng.Next(8),
                    Cs = rng.Next(3) == 0 ? (ushort)rng.Next(0x10000) : Replayvisor.Engine.Boot.XenLayout.FlatKernelCs,
                    Address = rng.Next(2) == 0 ? Entry : (uint)rng.NextInt64(0, 1L << 32),
                };
            if (rng.Next(2) == 0) hv.Vcpu.KernelSs = (ushort)rng.Next(0x10000);
            hv.Vcpu.Event = new Callback { Cs = Replayvisor.Engine.Boot.XenLayout.FlatKernelCs, Eip = Entry };
            hv.SharedInfo.SetUpcallMask(0, (byte)rng.Next(2));
            for (int i = 0; i < 200 && !hv.IsStopped; i++)
            {
                var kind = (EventKind)rng.Next(3);
                byte vector = (byte)rng.Next(256);
                if (rng.Next(2) == 0) m.Cpu.Esp = rng.Next(2) == 0 ? KernelStackTop - (uint)rng.Next(0x800) : (uint)rng.NextInt64(0, 1L << 32);
                if (rng.Next(4) == 0) m.Cpu.Eip = (uint)rng.NextInt64(0, 1L << 32);
                if (rng.Next(8) == 0) hv.Events.Send(2);
                hv.Deliver(m.Cpu, new CpuEvent(vector, kind, rng.Next(2) == 0, (uint)rng.Next(0x10000), m.Cpu.Eip, (uint)rng.NextInt64(0, 1L << 32)));
            }
        }
    }
}
