using Replayvisor.Engine.Boot;

namespace Replayvisor.Engine.Xen.Mm;

/// <summary>
/// check_descriptor for a 32-bit PV guest whose kernel runs in ring 1 (docs/xen-abi.md §11; Xen 3.1
/// x86_32/mm.c). May adjust the descriptor: DPL 0 → 1, call-gate target RPL 0 → 1, limit truncated
/// so the segment cannot reach past M2P_END. Returns false when the descriptor is refused.
/// </summary>
public static class DescriptorCheck
{
    private const uint SegP = 1u << 15, SegDpl = 3u << 13, SegS = 1u << 12, SegType = 0xFu << 8,
        SegCode = 1u << 11, SegEc = 1u << 10, SegG = 1u << 23;
    private const uint GuestKernelRpl = 1;

    public static bool Check(ref ulong desc, uint segmentMax)
    {
        unchecked
        {
            uint a = (uint)desc, b = (uint)(desc >> 32);
            if ((b & SegP) == 0) return true; // a not-present descriptor always faults: safe
            if ((b & SegDpl) < (GuestKernelRpl << 13))
                b = (b & ~SegDpl) | (GuestKernelRpl << 13);

            if ((b & SegS) == 0)
            {
                // System descriptors: call gates only, targeting a guest code selector.
                if ((b & SegType) != 0xC00) return false;
                ushort cs = (ushort)(a >> 16);
                if ((cs & 3) == 0) cs |= (ushort)GuestKernelRpl;
                if (!GateSelectorOk(cs)) return false;
                a = (a & 0xFFFF) | ((uint)cs << 16);
                if ((b & 0xE0) != 0) return false; // reserved bits
                desc = a | ((ulong)b << 32);
                return true;
            }

            // Base at least a page below the Xen-private area.
            uint @base = (b & 0xFF000000) | ((b & 0xFF) << 16) | (a >> 16);
            if (@base >= segmentMax - XenLayout.PageSize) return false;

            uint limit = (b & 0xF0000) | (a & 0xFFFF);
            limit++; // inclusive
            if ((b & SegG) != 0) limit <<= 12;

            bool truncate = false;
            if ((b & (SegCode | SegEc)) == SegEc)
            {
                // Data, expand-down: anything that does not wrap is truncated.
                if (@base + limit > @base) { limit = 0u - (@base & 0xFFFFF000u); truncate = true; }
            }
            else if (@base + limit <= @base || @base + limit > segmentMax)
            {
                // Data expand-up or code: wrapping or reaching past M2P_END.
                limit = segmentMax - @base;
                truncate = true;
            }
            if (truncate)
            {
                if ((b & SegG) == 0) return false; // byte-granular: "too dangerous"
                limit = (limit >> 12) - 1;
                a = (a & ~0xFFFFu) | (limit & 0xFFFF);
                b = (b & ~0xF0000u) | (limit & 0xF0000);
            }
            desc = a | ((ulong)b << 32);
            return true;
        }
    }

    /// <summary>guest_gate_selector_okay: an LDT selector, a guest GDT entry, or exactly FLAT_KERNEL_CS.</summary>
    private static bool GateSelectorOk(ushort sel) =>
        (sel & 4) != 0 || (sel >> 3) < XenLayout.FirstReservedGdtEntry || sel == XenLayout.FlatKernelCs;
}
