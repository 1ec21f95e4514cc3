using System.Runtime.CompilerServices;

namespace Replayvisor.Engine.Trace.Compact;

/// <summary>
/// The previous arguments and site of each hypercall number within one chunk, the base of the
/// differences stored for the next call of that number. Numbers below 64 (every Xen hypercall,
/// xen/include/public/xen.h __HYPERVISOR_*) are looked up in an array, others in a dictionary.
/// </summary>
internal sealed class HypercallHistory
{
    public sealed class Entry
    {
        public readonly uint[] Args = new uint[CompactCodes.ArgCountMask];
        public uint Site;
    }

    private readonly Entry?[] _small = new Entry?[64];
    private readonly Dictionary<int, Entry> _other = [];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Entry For(int number)
    {
        if ((uint)number < (uint)_small.Length) return _small[number] ??= new Entry();
        if (!_other.TryGetValue(number, out var e)) _other[number] = e = new Entry();
        return e;
    }

    public void Clear()
    {
        Array.Clear(_small);
        _other.Clear();
    }
}
