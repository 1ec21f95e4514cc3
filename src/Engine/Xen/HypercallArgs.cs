using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Replayvisor.Engine.Xen;

/// <summary>The six hypercall argument registers (EBX, ECX, EDX, ESI, EDI, EBP; docs/xen-abi.md §1).</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct HypercallArgs(uint A1, uint A2, uint A3, uint A4, uint A5, uint A6)
{
    public uint this[int i] => i switch { 0 => A1, 1 => A2, 2 => A3, 3 => A4, 4 => A5, _ => A6 };

    /// <summary>A 64-bit argument passed in two consecutive registers, low word first (docs/xen-abi.md §1).</summary>
    public static ulong Pair(uint lo, uint hi) => lo | ((ulong)hi << 32);

    /// <summary>The six registers in order as a span over <paramref name="args"/> where it lies (six uints, sequential): nothing copied.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ReadOnlySpan<uint> AsSpan(in HypercallArgs args) =>
        MemoryMarshal.CreateReadOnlySpan(ref Unsafe.As<HypercallArgs, uint>(ref Unsafe.AsRef(in args)), 6);
}
