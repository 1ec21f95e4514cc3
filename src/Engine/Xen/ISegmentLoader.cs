using Replayvisor.Engine.Cpu;

namespace Replayvisor.Engine.Xen;

/// <summary>
/// "Load this selector with the architectural checks" (SDM vol. 3 §5.5–5.8, vol. 2 MOV/IRET), as
/// Xen's return-to-guest path needs it: the DS/ES/FS/GS reloads of restore_all_guest (failsafe on
/// failure), and the CS/SS checks of its final iret (HYPERVISOR_iret and bounce frames). The
/// result is returned, not committed, so a caller can check CS and SS before changing anything.
/// <see cref="CpuSegmentLoader"/> implements it with the CPU's own descriptor checks.
/// </summary>
public interface ISegmentLoader
{
    /// <summary>
    /// <paramref name="seg"/> selects the rule set: <see cref="Seg.DS"/>/ES/FS/GS = a data-segment load
    /// at privilege <paramref name="cpl"/> (null allowed); <see cref="Seg.SS"/> = a stack-segment load
    /// for a stack at privilege <paramref name="cpl"/>; <see cref="Seg.CS"/> = the code-segment checks
    /// of an iret/far return performed at privilege <paramref name="cpl"/> (target RPL ≥ cpl).
    /// </summary>
    bool TryLoad(int seg, ushort selector, int cpl, out SegmentCache cache, out CpuEvent fault);

    /// <summary>The segment registers of a return's loads, in restore_all_guest's order (xen/arch/x86/x86_32/entry.S): DS, ES, FS, GS, then the iret's CS and SS.</summary>
    static ReadOnlySpan<int> ReturnSegments => [Seg.DS, Seg.ES, Seg.FS, Seg.GS, Seg.CS, Seg.SS];

    /// <summary>
    /// The six loads of a return to the guest, in <see cref="ReturnSegments"/> order: DS, ES, FS, GS as
    /// data at ring 0, the iret's CS checks at ring 0, and SS as the stack of the ring in CS's RPL.
    /// <paramref name="selectors"/> and <paramref name="loaded"/> are in that order. Returns -1 when all
    /// six loaded, or the index of the first that failed (<paramref name="fault"/>); later ones are not tried.
    /// <paramref name="loaded"/> is <paramref name="scratch"/> (six entries, where the loads are written) or
    /// the loader's own storage, valid until its next call.
    /// </summary>
    int TryLoadReturn(ReadOnlySpan<ushort> selectors, Span<SegmentCache> scratch, out ReadOnlySpan<SegmentCache> loaded, out CpuEvent fault)
    {
        loaded = scratch;
        return LoadReturnInOrder(this, selectors, scratch, out fault);
    }

    /// <summary><see cref="TryLoadReturn"/> as six <see cref="TryLoad"/> calls of <paramref name="loader"/>.</summary>
    static int LoadReturnInOrder(ISegmentLoader loader, ReadOnlySpan<ushort> selectors, Span<SegmentCache> loaded, out CpuEvent fault)
    {
        int rpl = selectors[4] & 3;
        for (int i = 0; i < ReturnSegments.Length; i++)
            if (!loader.TryLoad(ReturnSegments[i], selectors[i], i == 5 ? rpl : 0, out loaded[i], out fault)) return i;
        fault = default;
        return -1;
    }
}
