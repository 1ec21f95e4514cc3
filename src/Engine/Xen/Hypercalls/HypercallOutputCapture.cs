using System.Buffers.Binary;
using System.IO.Hashing;

namespace Replayvisor.Engine.Xen.Hypercalls;

/// <summary>
/// What one hypercall wrote back into guest memory, as the hypercall table declares it (rr's
/// syscall-table discipline): before each call (multicall entries included) the written buffers
/// of its table row are resolved to guest ranges; afterwards the model's copy_to_guest writes are
/// split into the parts inside those ranges (captured for the trace) and any part outside them
/// (a table or model bug, reported to <see cref="Hypervisor.UndeclaredWrite"/>).
/// </summary>
public sealed class HypercallOutputCapture
{
    private readonly List<GuestRange> _declared = [];

    /// <summary>The ranges declared so far for the current top-level hypercall.</summary>
    public IReadOnlyList<GuestRange> Declared => _declared;

    public void Clear() => _declared.Clear();

    internal void Declare(GuestRange range) => _declared.Add(range);

    /// <summary>Adds the written buffers of <paramref name="spec"/> for a call with these arguments.</summary>
    public void Declare(Hypervisor hv, HypercallSpec spec, in HypercallArgs a)
    {
        foreach (var b in spec.Memory)
        {
            if (!b.Written) continue;
            if (b.Resolve != null) { b.Resolve(hv, a, _declared); continue; }
            uint address = b.Arg < 0 ? hv.Cpu.Esp : a[b.Arg];
            ulong count = b.CountArg switch { GuestBuffer.One => 1, >= 0 => a[b.CountArg], _ => 0 };
            ulong length = count * (ulong)b.ElementSize;
            if (length > 0) _declared.Add(new GuestRange(address, (uint)Math.Min(length, uint.MaxValue)));
        }
    }

    /// <summary>Splits <paramref name="writes"/> into the runs of bytes inside and outside the declared ranges, in write order.</summary>
    public void Split(IReadOnlyList<GuestWriteRecord> writes, List<GuestWriteRecord> inside, List<GuestWriteRecord> outside)
    {
        foreach (var w in writes)
        {
            int start = 0;
            while (start < w.Bytes.Length)
            {
                bool isIn = IsDeclared(w.Address + (ulong)start);
                int end = start + 1;
                while (end < w.Bytes.Length && IsDeclared(w.Address + (ulong)end) == isIn) end++;
                var part = start == 0 && end == w.Bytes.Length ? w : new GuestWriteRecord(w.Address + (uint)start, w.Bytes[start..end]);
                (isIn ? inside : outside).Add(part);
                start = end;
            }
        }
    }

    private bool IsDeclared(ulong address)
    {
        foreach (var r in _declared)
            if (r.Contains(address)) return true;
        return false;
    }

    /// <summary>
    /// XxHash64 of the captured writes in order, each as u32 address, u32 length, bytes (little
    /// endian); 0 when nothing was written (docs/trace-format.md, HypercallEvent key 6).
    /// </summary>
    public static ulong Digest(IReadOnlyList<GuestWriteRecord> writes)
    {
        if (writes.Count == 0) return 0;
        var h = new XxHash64();
        Span<byte> head = stackalloc byte[8];
        foreach (var w in writes)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(head, w.Address);
            BinaryPrimitives.WriteUInt32LittleEndian(head[4..], (uint)w.Bytes.Length);
            h.Append(head);
            h.Append(w.Bytes);
        }
        ulong d = h.GetCurrentHashAsUInt64();
        return d == 0 ? 1 : d;
    }
}
