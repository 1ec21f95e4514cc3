using DiffPlex;
using DiffPlex.Chunkers;

namespace Replayvisor.Replay.Diff;

/// <summary>One line of an alignment: an event of both runs (equal), of run A only (removed) or of run B only (added).</summary>
public sealed record AlignedLine(char Op, DiffEvent? A, DiffEvent? B)
{
    public const char Same = ' ', OnlyA = '-', OnlyB = '+';
}

/// <summary>A run of aligned lines with context, as a unified diff prints it.</summary>
public sealed record DiffHunk(int StartA, int CountA, int StartB, int CountB, IReadOnlyList<AlignedLine> Lines);

/// <summary>
/// Aligns two event streams by their keys with a Myers sequence diff (DiffPlex's O(ND) differ on
/// one key per line), then cuts the result into unified-diff hunks.
/// </summary>
public static class EventAlignment
{
    public static List<AlignedLine> Align(IReadOnlyList<DiffEvent> a, IReadOnlyList<DiffEvent> b)
    {
        if (a.Count == 0 || b.Count == 0)
            return [.. a.Select(e => new AlignedLine(AlignedLine.OnlyA, e, null)), .. b.Select(e => new AlignedLine(AlignedLine.OnlyB, null, e))];
        // Keys never contain a newline (console lines are split on it), so one key is one line for the differ.
        string textA = string.Join('\n', a.Select(e => e.Key)), textB = string.Join('\n', b.Select(e => e.Key));
        var result = Differ.Instance.CreateDiffs(textA, textB, ignoreWhiteSpace: false, ignoreCase: false, new LineChunker());
        var lines = new List<AlignedLine>(Math.Max(a.Count, b.Count));
        int ia = 0, ib = 0;
        foreach (var block in result.DiffBlocks)
        {
            while (ia < block.DeleteStartA && ib < block.InsertStartB) lines.Add(new AlignedLine(AlignedLine.Same, a[ia++], b[ib++]));
            for (int k = 0; k < block.DeleteCountA; k++) lines.Add(new AlignedLine(AlignedLine.OnlyA, a[ia++], null));
            for (int k = 0; k < block.InsertCountB; k++) lines.Add(new AlignedLine(AlignedLine.OnlyB, null, b[ib++]));
        }
        while (ia < a.Count && ib < b.Count) lines.Add(new AlignedLine(AlignedLine.Same, a[ia++], b[ib++]));
        while (ia < a.Count) lines.Add(new AlignedLine(AlignedLine.OnlyA, a[ia++], null));
        while (ib < b.Count) lines.Add(new AlignedLine(AlignedLine.OnlyB, null, b[ib++]));
        return lines;
    }

    /// <summary>Index of the first line that is not in both runs, or -1.</summary>
    public static int FirstDifference(IReadOnlyList<AlignedLine> lines)
    {
        for (int i = 0; i < lines.Count; i++)
            if (lines[i].Op != AlignedLine.Same) return i;
        return -1;
    }

    /// <summary>Unified-diff hunks with <paramref name="context"/> equal lines around each change (nearby changes share a hunk).</summary>
    public static List<DiffHunk> Hunks(IReadOnlyList<AlignedLine> lines, int context)
    {
        var hunks = new List<DiffHunk>();
        int i = 0;
        while (i < lines.Count)
        {
            if (lines[i].Op == AlignedLine.Same) { i++; continue; }
            int start = Math.Max(0, i - context);
            int end = i;
            // Extend while the next change is within 2*context equal lines.
            while (true)
            {
                while (end < lines.Count && lines[end].Op != AlignedLine.Same) end++;
                int next = end;
                while (next < lines.Count && lines[next].Op == AlignedLine.Same) next++;
                // In long: a context near int.MaxValue (`--context 2147483647`) must not wrap around.
                if (next < lines.Count && next - end <= 2L * context) { end = next; continue; }
                break;
            }
            int stop = (int)Math.Min(lines.Count, (long)end + context);
            int posA = lines.Take(start).Count(l => l.A != null), posB = lines.Take(start).Count(l => l.B != null);
            var slice = lines.Skip(start).Take(stop - start).ToList();
            hunks.Add(new DiffHunk(posA + 1, slice.Count(l => l.A != null), posB + 1, slice.Count(l => l.B != null), slice));
            i = stop;
        }
        return hunks;
    }
}
