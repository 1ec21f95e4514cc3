using Replayvisor.Engine.Trace;

namespace Replayvisor.Replay.Text;

/// <summary>Hypercall names for display (docs/xen-abi.md §1.1).</summary>
public static class HypercallNames
{
    public static string Name(int number) => Replayvisor.Engine.Xen.Hypercalls.HypercallTable.NameOf(number);

    public static string Describe(HypercallEvent h)
    {
        string text = $"{Replayvisor.Engine.Xen.Hypercalls.HypercallFormatter.Format(h.Number, h.Args.AsSpan())} = {h.Result}";
        if (h.Multicall.Count > 0)
            text += " [" + string.Join(", ", h.Multicall.AsSpan().ToArray().Select(m => $"{Name(m.Op)}={m.Result}")) + "]";
        return text;
    }
}
