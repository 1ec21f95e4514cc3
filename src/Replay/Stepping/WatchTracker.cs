using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Xen;

namespace Replayvisor.Replay.Stepping;

/// <summary>
/// Checks watchpoints around one step: values before and after (a changed value is a write,
/// whoever made it: the instruction, or the hypervisor on its behalf), and the decoded
/// instruction's own reads and writes (which catch reads and same-value writes), and the guest
/// memory the hypervisor reads for it (<see cref="IGuestReadWatch"/>: a hypercall's copy_from_guest).
/// </summary>
public sealed class WatchTracker : IGuestReadWatch
{
    private readonly GuestView _view;
    private readonly InstructionAccesses _accesses;
    private IReadOnlyList<Watchpoint> _watches = [];
    private byte[]?[] _before = [];
    private List<MemoryTouch> _touches = [];
    /// <summary>Per watch: the hypervisor read some of its bytes during the current step.</summary>
    private bool[] _readByXen = [];

    public WatchTracker(X86Cpu cpu, GuestView view)
    {
        _view = view;
        _accesses = new InstructionAccesses(cpu, view);
    }

    /// <summary>Notes the watched values and what the next instruction will touch.</summary>
    public void Before(IReadOnlyList<Watchpoint> watches)
    {
        _watches = watches;
        if (_before.Length != watches.Count) _before = new byte[]?[watches.Count];
        if (_readByXen.Length != watches.Count) _readByXen = new bool[watches.Count];
        else Array.Clear(_readByXen);
        for (int i = 0; i < watches.Count; i++) _before[i] = Read(watches[i], _before[i]);
        _touches = watches.Count > 0 ? _accesses.Next() : [];
    }

    /// <summary>
    /// The first watch hit by the step just taken. <paramref name="retired"/>: the decoded
    /// instruction completed (no fault or event was delivered instead).
    /// </summary>
    public WatchHit? After(bool retired)
    {
        for (int i = 0; i < _watches.Count; i++)
        {
            var w = _watches[i];
            var now = Read(w, null);
            bool changed = now == null || _before[i] == null ? now != _before[i] : !now.AsSpan().SequenceEqual(_before[i]);
            // Xen's reads count whether or not the instruction retired: a hypercall's reads happen before it returns.
            bool read = _readByXen[i], wrote = changed;
            if (retired)
                foreach (var t in _touches)
                    if (w.Overlaps(t.Address, t.Length))
                    {
                        read |= t.Reads;
                        wrote |= t.Writes;
                    }
            var hit = w.Kind switch
            {
                WatchKind.Write when changed => WatchKind.Write,
                WatchKind.Read when read => WatchKind.Read,
                WatchKind.Access when wrote => WatchKind.Write,
                WatchKind.Access when read => WatchKind.Read,
                _ => (WatchKind?)null,
            };
            if (hit is { } kind) return new WatchHit(w, kind, _before[i]?.ToArray() ?? [], now ?? []);
        }
        return null;
    }

    /// <summary>Xen read guest memory for the instruction being stepped (GuestMemory.ReadWatch).</summary>
    public void Read(uint va, int length)
    {
        for (int i = 0; i < _watches.Count; i++)
        {
            var w = _watches[i];
            if (w.Kind != WatchKind.Write && w.Overlaps(va, length)) _readByXen[i] = true;
        }
    }

    /// <summary>Whether any of <paramref name="watches"/> reacts to reads (only then are Xen's reads worth hearing of).</summary>
    public static bool WantsReads(IReadOnlyList<Watchpoint> watches)
    {
        foreach (var w in watches)
            if (w.Kind != WatchKind.Write) return true;
        return false;
    }

    /// <summary>The watched bytes (into <paramref name="reuse"/> when it fits), or null while any of them is unmapped.</summary>
    private byte[]? Read(Watchpoint w, byte[]? reuse)
    {
        var bytes = reuse?.Length == w.Length ? reuse : new byte[w.Length];
        return _view.TryRead(w.Address, bytes) ? bytes : null;
    }
}
