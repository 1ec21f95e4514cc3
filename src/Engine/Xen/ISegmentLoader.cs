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
}
