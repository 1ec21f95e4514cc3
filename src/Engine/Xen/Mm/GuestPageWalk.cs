using System.Runtime.CompilerServices;

namespace Replayvisor.Engine.Xen.Mm;

/// <summary>Where the L1 entry mapping a VA lives under the current page tables.</summary>
internal readonly record struct L1Slot(uint L1Mfn, int Index, ulong Entry);

/// <summary>
/// Software walk of the guest's current tables (Xen's guest_map_l1e / guest_get_eff_l1e): reads
/// only, never sets A/D bits and never touches the CPU's TLB or CR2.
/// </summary>
internal static class GuestPageWalk
{
    /// <summary>Finds the L1 entry for va; false if an upper level is not present or is a superpage.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool FindL1(PagingFormat fmt, uint rootMfn, uint va, out L1Slot slot)
    {
        slot = default;
        uint l2;
        if (fmt.Pae)
        {
            ulong l3e = fmt.Read(rootMfn, (int)(va >> 30));
            if ((l3e & Pte.P) == 0) return false;
            ulong m = fmt.Mfn(l3e);
            if (m >= fmt.Mem.FrameCount) return false;
            l2 = (uint)m;
        }
        else l2 = rootMfn;
        ulong l2e = fmt.Read(l2, fmt.L2Index(va));
        if ((l2e & (Pte.P | Pte.PSE)) != Pte.P) return false;
        ulong l1 = fmt.Mfn(l2e);
        if (l1 >= fmt.Mem.FrameCount) return false;
        int index = fmt.L1Index(va);
        slot = new L1Slot((uint)l1, index, fmt.Read((uint)l1, index));
        return true;
    }

    /// <summary>Supervisor read translation (presence only), for fetching the faulting instruction.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool TranslateRead(PagingFormat fmt, uint rootMfn, uint va, out ulong pa)
    {
        pa = 0;
        if (!FindL1(fmt, rootMfn, va, out var s) || (s.Entry & Pte.P) == 0) return false;
        ulong m = fmt.Mfn(s.Entry);
        if (m >= fmt.Mem.FrameCount) return false;
        pa = (m << 12) | (va & 0xFFFu);
        return true;
    }
}
