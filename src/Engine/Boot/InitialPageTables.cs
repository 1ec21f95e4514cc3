using Replayvisor.Engine.Memory;

namespace Replayvisor.Engine.Boot;

/// <summary>
/// Writes the initial page tables of §7: non-PAE one L2 then L1s; PAE one L3, then the L2s (one per
/// 1 GB slot in use, then the extra slot-3 L2), then L1s. They map [VIRT_BASE, virt_pgtab_end) to
/// the domain's frames. Xen's own slots (≥ FirstXenL2Slot) are left empty for the hypervisor model.
/// </summary>
internal static class InitialPageTables
{
    public static List<PageTableFrame> Write(PhysicalMemory mem, DomainVirtualLayout v, IReadOnlyList<uint> p2m, bool pae)
    {
        var frames = new List<PageTableFrame>();
        uint ptPfn = v.Pfn(v.PageTables);
        PageTableFrame Frame(int level, uint index)
        {
            uint pfn = ptPfn + index;
            return new PageTableFrame(level, p2m[(int)pfn], pfn, v.PageTables + index * XenLayout.PageSize);
        }

        frames.Add(Frame(pae ? 3 : 2, 0));
        uint firstL1 = 1 + (pae ? v.L2Frames : 0);
        uint firstGb = v.VirtBase >> 30;
        if (pae)
            for (uint i = 0; i < v.L2Frames; i++)
            {
                var l2 = Frame(2, 1 + i);
                frames.Add(l2);
                uint slot = v.ExtraSlot3L2 && i == v.L2Frames - 1 ? 3 : firstGb + i;
                mem.Write64(Entry(frames[0].Mfn, slot, 8), ((ulong)l2.Mfn << 12) | PteFlags.L3);
            }
        for (uint i = 0; i < v.L1Frames; i++)
            frames.Add(Frame(1, firstL1 + i));

        int shift = pae ? 21 : 22;
        uint firstL1Slot = v.VirtBase >> shift;
        for (ulong va = v.VirtBase; va < v.VirtPgtabEnd; va += XenLayout.PageSize)
        {
            uint pfn = v.Pfn((uint)va);
            var l1 = frames[(int)(firstL1 + ((uint)(va >> shift) - firstL1Slot))];
            ulong flags = v.IsPageTablePfn(pfn) ? PteFlags.L1 & ~PteFlags.Writable : PteFlags.L1;
            if (pae)
            {
                uint l2Mfn = frames[1 + (int)((uint)(va >> 30) - firstGb)].Mfn;
                mem.Write64(Entry(l2Mfn, (uint)(va >> 21) & 511, 8), ((ulong)l1.Mfn << 12) | PteFlags.L2);
                mem.Write64(Entry(l1.Mfn, (uint)(va >> 12) & 511, 8), ((ulong)p2m[(int)pfn] << 12) | flags);
            }
            else
            {
                mem.Write32(Entry(frames[0].Mfn, (uint)(va >> 22), 4), (l1.Mfn << 12) | (uint)PteFlags.L2);
                mem.Write32(Entry(l1.Mfn, (uint)(va >> 12) & 1023, 4), (p2m[(int)pfn] << 12) | (uint)flags);
            }
        }
        return frames;
    }

    private static ulong Entry(uint tableMfn, uint index, int size) => ((ulong)tableMfn << 12) + (ulong)index * (uint)size;
}
