using Replayvisor.Engine.Memory;
using Replayvisor.Replay.Stepping;

namespace Replayvisor.Replay.TimeTravel;

/// <summary>
/// The replay snapshots kept for seeking backwards, within a memory budget. Memory pages are
/// shared between snapshots (<see cref="RamPages"/>), so a page counts once however many
/// snapshots hold it. Over budget, the snapshot whose removal leaves the smallest gap relative to
/// its distance from the current position goes first, which keeps the ladder dense near the
/// current position and sparse far from it. The snapshot at instruction 0 is never dropped.
/// </summary>
public sealed class SnapshotLadder
{
    private readonly List<Entry> _entries = [];
    private readonly Dictionary<object, int> _pageRefs = new(ReferenceEqualityComparer.Instance);
    private long _fixedBytes;

    private sealed record Entry(ReplayState State, long FixedBytes);

    public SnapshotLadder(long budgetBytes) => BudgetBytes = budgetBytes;

    public long BudgetBytes { get; }
    public int Count => _entries.Count;
    /// <summary>Distinct memory pages held, times the page size, plus each snapshot's own (non-page) bytes.</summary>
    public long BytesUsed => (long)_pageRefs.Count * PhysicalMemory.PageSize + _fixedBytes;
    public IEnumerable<ulong> Positions => _entries.Select(e => e.State.Icount);

    public bool Has(ulong icount) => IndexOf(icount) >= 0;

    /// <summary>Bytes of the pages of <paramref name="state"/> that no snapshot in the ladder holds yet.</summary>
    public long NewPageBytes(ReplayState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var seen = new HashSet<object>(ReferenceEqualityComparer.Instance);
        foreach (var page in Pages(state))
            if (!_pageRefs.ContainsKey(page)) seen.Add(page);
        return (long)seen.Count * PhysicalMemory.PageSize;
    }

    /// <summary>Adds a snapshot (<paramref name="fixedBytes"/>: what it holds besides memory pages), then trims to the budget around <paramref name="current"/>.</summary>
    public void Add(ReplayState state, long fixedBytes, ulong current)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (Has(state.Icount)) return;
        int at = _entries.FindIndex(e => e.State.Icount > state.Icount);
        if (at < 0) at = _entries.Count;
        _entries.Insert(at, new Entry(state, fixedBytes));
        _fixedBytes += fixedBytes;
        foreach (var page in Pages(state)) _pageRefs[page] = _pageRefs.TryGetValue(page, out int n) ? n + 1 : 1;
        Trim(current);
    }

    /// <summary>The latest snapshot at or before <paramref name="icount"/>.</summary>
    public ReplayState? AtOrBefore(ulong icount)
    {
        for (int i = _entries.Count - 1; i >= 0; i--)
            if (_entries[i].State.Icount <= icount) return _entries[i].State;
        return null;
    }

    /// <summary>The latest snapshot strictly before <paramref name="icount"/>.</summary>
    public ReplayState? Before(ulong icount) => icount == 0 ? null : AtOrBefore(icount - 1);

    private int IndexOf(ulong icount) => _entries.FindIndex(e => e.State.Icount == icount);

    private static IEnumerable<object> Pages(ReplayState s) => s.Machine.Pages?.PageIdentities ?? [];

    private void Trim(ulong current)
    {
        while (BytesUsed > BudgetBytes && _entries.Count > 2)
        {
            int victim = -1;
            double best = double.MaxValue;
            for (int i = 1; i < _entries.Count; i++)
            {
                ulong at = _entries[i].State.Icount;
                ulong prev = _entries[i - 1].State.Icount;
                ulong next = i + 1 < _entries.Count ? _entries[i + 1].State.Icount : Math.Max(at, current);
                double distance = 1 + (at > current ? at - current : current - at);
                double score = (next - prev) / distance;
                if (score < best) { best = score; victim = i; }
            }
            Remove(victim);
        }
    }

    private void Remove(int index)
    {
        var e = _entries[index];
        _entries.RemoveAt(index);
        _fixedBytes -= e.FixedBytes;
        foreach (var page in Pages(e.State))
            if (--_pageRefs[page] == 0) _pageRefs.Remove(page);
    }
}
