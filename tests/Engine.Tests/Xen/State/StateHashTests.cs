using System.Reflection;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Xen;
using Replayvisor.Engine.Xen.Mm;
using Replayvisor.Engine.Time;

namespace Replayvisor.Engine.Tests.Xen.State;

/// <summary>XenMachine.StateHash covers every piece of Xen model state, and only state.</summary>
public class StateHashTests
{
    private static XenMachine Started()
    {
        var m = TickerGuest.Machine();
        TickerGuest.Decorate(m);
        Assert.Equal(MachineExitKind.InstructionLimit, m.Run(150_000).Kind);
        return m;
    }

    [Fact]
    public void TwoMachinesRunTheSameWayHashTheSame()
    {
        var a = TickerGuest.Machine();
        var b = TickerGuest.Machine();
        Assert.Equal(a.StateHash(), b.StateHash());
        TickerGuest.Decorate(a);
        TickerGuest.Decorate(b);
        a.Run(123_456);
        // Observers and sinks are not state.
        b.Hypervisor.Observer = new EventLog();
        b.Hypervisor.ConsoleSink = new BufferConsoleSink();
        b.Run(123_456);
        Assert.Equal(a.StateHash(), b.StateHash());
        Assert.Equal(a.StateHash(), a.StateHash());
    }

    public static TheoryData<string> Mutations() => [.. MutationTable.Keys];

    private static readonly Dictionary<string, Action<XenMachine>> MutationTable = new()
    {
        ["trap table entry address"] = m => m.Hypervisor.Vcpu.Traps[14].Address ^= 0x10,
        ["trap table entry flags"] = m => m.Hypervisor.Vcpu.Traps[6].Flags ^= 4,
        ["trap table entry cs"] = m => m.Hypervisor.Vcpu.Traps[0x80].Cs ^= 8,
        ["event callback address"] = m => m.Hypervisor.Vcpu.Event.Eip += 1,
        ["failsafe callback cs"] = m => m.Hypervisor.Vcpu.Failsafe.Cs ^= 8,
        ["nmi callback"] = m => m.Hypervisor.Vcpu.NmiCallbackEip = 0xC0100000,
        ["failsafe masks events"] = m => m.Hypervisor.Vcpu.FailsafeMasksEvents ^= true,
        ["kernel stack pointer"] = m => m.Hypervisor.Vcpu.KernelSp -= 4,
        ["kernel stack segment"] = m => m.Hypervisor.Vcpu.KernelSs ^= 8,
        ["singleshot timer deadline"] = m => m.Hypervisor.Vcpu.SingleshotNs += 1,
        ["periodic timer period"] = m => m.Hypervisor.Vcpu.PeriodNs += 1,
        ["periodic timer last tick"] = m => m.Hypervisor.Vcpu.PeriodicLastNs += 1,
        ["poll timeout"] = m => m.Hypervisor.Vcpu.PollTimeoutNs = 5,
        ["blocked"] = m => m.Hypervisor.Vcpu.Blocked ^= true,
        ["virq binding"] = m => m.Hypervisor.Vcpu.VirqPort[Hypervisor.VirqConsole] = 7,
        ["virtual ts"] = m => m.Hypervisor.Vcpu.VirtualTs ^= true,
        ["virtual iopl"] = m => m.Hypervisor.Vcpu.Iopl = 3,
        ["debug register"] = m => m.Hypervisor.Vcpu.DebugRegs[7] = 0x401,
        ["event channel state"] = m => m.Hypervisor.Events[200].State = PortState.Unbound,
        ["event channel notify vcpu"] = m => m.Hypervisor.Events[3].NotifyVcpu = 1,
        ["event channel remote port"] = m => m.Hypervisor.Events[1].RemotePort ^= 1,
        ["event channel virq"] = m => m.Hypervisor.Events[3].Virq = 5,
        ["console ring input queue"] = m => m.Hypervisor.Console.RestoreInput([.. m.Hypervisor.Console.SnapshotRingInput(), 1], []),
        ["console_io input queue"] = m => m.Hypervisor.Console.RestoreInput(m.Hypervisor.Console.SnapshotRingInput(), [(byte)'x']),
        ["pit channel 2"] = m => m.Hypervisor.IoPortWrite(0x42, 1, 0x34),
        ["grant table frames"] = m => Assert.True(m.Hypervisor.GrowGrantTable(1)),
        ["runstate area"] = m => m.Hypervisor.RunstateArea = 0xC0104F00,
        ["time refresh deadline"] = m => m.Hypervisor.Restore(m.Hypervisor.Snapshot() with { NextTimeRefreshNs = 1 }),
        ["blocked time"] = m => m.Hypervisor.AccountBlocked(1),
        ["shutdown"] = m => m.Hypervisor.CrashDomain("test"),
        ["page type count"] = m => Assert.True(m.Mm.Frames.GetType(TickerGuest.FreeMfn(m, 5), PageType.Writable)),
        ["page ref count"] = m => Assert.True(m.Mm.Frames.GetPage(TickerGuest.FreeMfn(m, 5), FrameOwner.Domain)),
        ["page pinned bit"] = m => Assert.True(m.Mm.Frames.TryClearPinned(TickerGuest.FreeMfn(m, 0))),
        ["vm_assist"] = m => Assert.Equal(0, m.Mm.VmAssistOp(0, 1)),
        ["mm kernel stack"] = m => m.Mm.Restore(m.Mm.Snapshot() with { KernelSp = 0x1234 }),
        ["gdt entries"] = m => m.Mm.Restore(m.Mm.Snapshot() with { GdtEntries = 7 }),
        ["ldt base"] = m => m.Mm.Restore(m.Mm.Snapshot() with { LdtBase = 0xC0104000 }),
        ["spare frame allocator"] = m => Assert.NotEqual(0u, m.Mm.AllocXenFrame()),
        ["virtual clock idle time"] = m => ((VirtualClock)m.Clock).IdleNs += 1,
    };

    [Theory]
    [MemberData(nameof(Mutations))]
    public void HashChangesWithEachPieceOfModelStateAndRestoreUndoesIt(string what)
    {
        var m = Started();
        var snap = m.Snapshot();
        byte[] before = m.StateHash();
        MutationTable[what](m);
        Assert.NotEqual(before, m.StateHash());
        m.Restore(snap);
        Assert.Equal(before, m.StateHash());
    }

    /// <summary>Every field of VcpuState (found by reflection, so a new field cannot be forgotten) is hashed, cloned and restored.</summary>
    [Fact]
    public void EveryVcpuFieldIsHashedClonedAndRestored()
    {
        var m = Started();
        var snap = m.Snapshot();
        byte[] before = m.StateHash();
        var fields = typeof(VcpuState).GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic);
        Assert.True(fields.Length >= 25);
        foreach (var f in fields)
        {
            var v = m.Hypervisor.Vcpu;
            Perturb(v, f);
            Assert.True(!before.AsSpan().SequenceEqual(m.StateHash()), $"VcpuState.{f.Name} is not hashed");
            var clone = v.Clone();
            Assert.True(Same(f.GetValue(clone), f.GetValue(v)), $"VcpuState.{f.Name} is not cloned");
            m.Restore(snap);
            Assert.True(before.AsSpan().SequenceEqual(m.StateHash()), $"VcpuState.{f.Name} is not restored");
        }
    }

    /// <summary>Every FrameInfo and Channel field is hashed (a struct field added later must be added to the encoding).</summary>
    [Fact]
    public void EveryFrameAndChannelFieldIsHashed()
    {
        var m = Started();
        byte[] before = m.StateHash();
        foreach (var f in typeof(FrameInfo).GetFields())
        {
            var frames = m.Mm.Frames.Snapshot();
            object boxed = frames[TickerGuest.FreeMfn(m, 7)];
            f.SetValue(boxed, Different(f.FieldType, f.GetValue(boxed)));
            var mutated = (FrameInfo[])frames.Clone();
            mutated[TickerGuest.FreeMfn(m, 7)] = (FrameInfo)boxed;
            m.Mm.Frames.Restore(mutated);
            Assert.True(!before.AsSpan().SequenceEqual(m.StateHash()), $"FrameInfo.{f.Name} is not hashed");
            m.Mm.Frames.Restore(frames);
            Assert.Equal(before, m.StateHash());
        }
        foreach (var f in typeof(Channel).GetFields())
        {
            var channels = m.Hypervisor.Events.SnapshotChannels();
            object boxed = channels[300];
            f.SetValue(boxed, Different(f.FieldType, f.GetValue(boxed)));
            var mutated = (Channel[])channels.Clone();
            mutated[300] = (Channel)boxed;
            m.Hypervisor.Events.RestoreChannels(mutated);
            Assert.True(!before.AsSpan().SequenceEqual(m.StateHash()), $"Channel.{f.Name} is not hashed");
            m.Hypervisor.Events.RestoreChannels(channels);
            Assert.Equal(before, m.StateHash());
        }
    }

    private static void Perturb(VcpuState v, FieldInfo f)
    {
        object? value = f.GetValue(v);
        if (value is Array arr)
        {
            int i = arr.Length - 1;
            arr.SetValue(Different(arr.GetType().GetElementType()!, arr.GetValue(i)), i);
        }
        else if (f.IsInitOnly) throw new InvalidOperationException($"readonly non-array field {f.Name}");
        else f.SetValue(v, Different(f.FieldType, value));
    }

    /// <summary>A value of <paramref name="t"/> different from <paramref name="old"/> (structs: every field changed).</summary>
    private static object Different(Type t, object? old)
    {
        if (t == typeof(bool)) return !(bool)old!;
        if (t.IsEnum) return Enum.ToObject(t, Convert.ToInt64(old, System.Globalization.CultureInfo.InvariantCulture) + 1);
        if (t.IsPrimitive) return Bump(old!);
        if (t.IsValueType)
        {
            object boxed = old ?? Activator.CreateInstance(t)!;
            foreach (var f in t.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic))
                f.SetValue(boxed, Different(f.FieldType, f.GetValue(boxed)));
            return boxed;
        }
        throw new InvalidOperationException($"no perturbation for {t}");
    }

    private static object Bump(object v) => v switch
    {
        byte b => (byte)(b + 1),
        sbyte b => (sbyte)(b + 1),
        ushort b => (ushort)(b + 1),
        short b => (short)(b + 1),
        uint b => b + 1,
        int b => b + 1,
        ulong b => b + 1,
        long b => b + 1,
        _ => throw new InvalidOperationException($"no perturbation for {v.GetType()}"),
    };

    private static bool Same(object? a, object? b) =>
        a is Array x && b is Array y ? !ReferenceEquals(x, y) && x.Cast<object>().SequenceEqual(y.Cast<object>()) : Equals(a, b);
}
