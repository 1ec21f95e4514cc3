using System.Reflection;
using Replayvisor.Engine.Machine;

namespace Replayvisor.Engine.Tests.Xen.State;

/// <summary>
/// Snapshot, restore and the state hash cover the same fields (docs/architecture.md, determinism
/// contract 5). Every field of a snapshot is changed in turn and restored: the state hash must
/// change, which fails if restore ignores the field or the hash leaves it out. Restoring the
/// unchanged snapshot must give back the hash it was taken at, which fails if the hash reads
/// something the snapshot does not carry.
/// </summary>
public class StateFieldsTests
{
    /// <summary>Snapshot fields that are restored but deliberately not hashed, with the reason.</summary>
    private static readonly Dictionary<string, string> NotHashed = new()
    {
        ["MachineSnapshot.ArmedDeadline"] = "the run loop's armed timer depends on where earlier runs stopped, not on the guest",
        ["MachineSnapshot.TimerDelay"] = "the chaos delay of the armed timer: an input, logged in the trace",
        ["MachineSnapshot.ResumePure"] = "how the run loop resumes after a pure stop: depends on where earlier runs stopped, not on the guest",
        ["MachineSnapshot.ResumeTimerAt"] = "the timer count a pure stop resumes with (as ResumePure)",
        ["CpuSnapshot.Tlb"] = "a cache (a stale entry is visible to the guest only through memory, which is hashed)",
        ["CpuSnapshot.TlbGeneration"] = "a cache generation",
        ["CpuSnapshot.TlbGlobalGeneration"] = "a cache generation",
        ["CpuSnapshot.DataBreakpointsActive"] = "which pages are kept out of the TLB (a cache) while data breakpoints are armed",
        ["CpuSnapshot.DataBreakpointKey"] = "the DR0-3/DR7 those pages came from (DR0-7 themselves are hashed)",
        ["HypervisorSnapshot.RingConsoleUsed"] = "which console the sink shows: display only, never seen by the guest",
        // The fault-storm guard (Hypervisor.Delivery.cs) counts deliveries at one instruction count. It is
        // not in the hash because every recorded checkpoint would change; it only differs between runs
        // inside a storm, which ends in a domain crash either way.
        ["HypervisorSnapshot.StormIcount"] = "the fault-storm guard's bookkeeping (see above)",
        ["HypervisorSnapshot.StormDeliveries"] = "the fault-storm guard's bookkeeping (see above)",
    };

    private static XenMachine Started(bool pae)
    {
        var m = TickerGuest.Machine(pae);
        TickerGuest.Decorate(m);
        m.Run(300_000);
        return m;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void RestoringASnapshotGivesBackItsHash(bool pae)
    {
        var m = Started(pae);
        byte[] before = m.StateHash();
        var s = m.Snapshot();
        m.Run(200_000);
        m.Restore(s);
        Assert.Equal(before, m.StateHash());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void EverySnapshotFieldIsRestoredAndHashed(bool pae)
    {
        var m = Started(pae);
        var s = m.Snapshot();
        m.Restore(s);
        byte[] baseline = m.StateHash();
        var missed = new List<string>();
        int checkedFields = 0;
        foreach (var (path, changed) in Variants(s, typeof(MachineSnapshot).Name, depth: 0))
        {
            if (NotHashed.ContainsKey(path)) continue;
            checkedFields++;
            m.Restore((MachineSnapshot)changed);
            if (m.StateHash().SequenceEqual(baseline)) missed.Add(path);
            m.Restore(s);
        }
        Assert.True(checkedFields > 30, $"only {checkedFields} fields were varied");
        Assert.Empty(missed);
        Assert.Equal(baseline, m.StateHash());
    }

    [Fact]
    public void EveryNotHashedEntryNamesARealSnapshotField()
    {
        var s = Started(true).Snapshot();
        var paths = Variants(s, typeof(MachineSnapshot).Name, depth: 0).Select(v => v.Path).ToHashSet();
        Assert.All(NotHashed.Keys, k => Assert.Contains(k, paths));
    }

    /// <summary>Copies of <paramref name="record"/> with one field changed each, named Type.Property (nested records recursively).</summary>
    private static IEnumerable<(string Path, object Changed)> Variants(object record, string name, int depth)
    {
        var clone = record.GetType().GetMethod("<Clone>$")!;
        foreach (var p in record.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (p.SetMethod == null || p.Name == "EqualityContract") continue;
            object? value = p.GetValue(record);
            string path = name + "." + p.Name;
            if (value != null && depth < 2 && value.GetType().GetMethod("<Clone>$") != null)
            {
                foreach (var (inner, changedInner) in Variants(value, value.GetType().Name, depth + 1))
                {
                    var copy = clone.Invoke(record, null)!;
                    p.SetValue(copy, changedInner);
                    yield return (inner, copy);
                }
                continue;
            }
            if (Changed(value) is { } changed)
            {
                var copy = clone.Invoke(record, null)!;
                p.SetValue(copy, changed);
                yield return (path, copy);
            }
        }
    }

    /// <summary>A different value of the same type (scalars flipped, the first element of a scalar array flipped); null when there is none.</summary>
    private static object? Changed(object? v) => v switch
    {
        bool b => !b,
        byte x => (byte)(x ^ 1),
        ushort x => (ushort)(x ^ 1),
        int x => x ^ 1,
        uint x => x ^ 1,
        long x => x ^ 1,
        ulong x => x ^ 1,
        string x => x + "!",
        Enum e => Enum.ToObject(e.GetType(), Convert.ToInt64(e, System.Globalization.CultureInfo.InvariantCulture) ^ 1),
        Array { Length: > 0 } a when Changed(a.GetValue(0)) is { } first => CopyWithFirst(a, first),
        _ => null,
    };

    private static Array CopyWithFirst(Array a, object first)
    {
        var copy = (Array)a.Clone();
        copy.SetValue(first, 0);
        return copy;
    }
}
