using Replayvisor.Engine.Cpu;

namespace Replayvisor.Engine.Xen;

/// <summary>
/// "Load this selector with the architectural checks" (SDM vol. 3 §5.5–5.8, vol. 2 MOV/IRET), as
/// Xen's return-to-guest path needs it: the DS/ES/FS/GS reloads of restore_all_guest (failsafe on
/// failure), and the CS/SS checks of its final iret (HYPERVISOR_iret and bounce frames). The
/// result is returned, not committed, so a caller can check CS and SS before changing anything.
/// <para>The CPU's segmentation code (wip/cpu-sys) should implement this; until then
/// <see cref="SimpleSegmentLoader"/> reads the GDT/LDT itself.</para>
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

/// <summary>
/// A small stand-in for the CPU's descriptor loads: reads descriptors through GDTR/LDTR with
/// supervisor accesses, except the reserved Xen entries (0x1C00–0x1DFF), which come from the fixed
/// table every vcpu GDT carries (xen-abi.md §3.1). A descriptor that cannot be read (GDT page not
/// supplied, LDT not mapped) gives #GP(selector &amp; ~3) (§11 says #GP(sel &amp; ~7) for the GDT; the
/// lazy-LDT #PF is not modelled here).
/// </summary>
public sealed class SimpleSegmentLoader(X86Cpu cpu, Boot.XenLayout layout) : ISegmentLoader
{
    public bool TryLoad(int seg, ushort sel, int cpl, out SegmentCache cache, out CpuEvent fault)
    {
        cache = default;
        fault = default;
        int rpl = sel & 3;
        uint err = sel & 0xFFFCu;
        if ((sel & 0xFFFC) == 0)
        {
            if (seg == Seg.CS || seg == Seg.SS) return Fail(Vectors.GP, 0, out fault);
            cache = SegmentCache.Null(sel);
            return true;
        }
        if (!TryReadDescriptor(sel, out ulong d)) return Fail(Vectors.GP, err, out fault);
        var c = SegmentCache.FromDescriptor(sel, d);
        int dpl = c.Dpl;
        if (seg == Seg.CS)
        {
            if (c.IsSystem || !c.IsCode || rpl < cpl) return Fail(Vectors.GP, err, out fault);
            if (c.Conforming ? dpl > rpl : dpl != rpl) return Fail(Vectors.GP, err, out fault);
            if (!c.Present) return Fail(Vectors.NP, err, out fault);
        }
        else if (seg == Seg.SS)
        {
            if (rpl != cpl || dpl != cpl || !c.Writable) return Fail(Vectors.GP, err, out fault);
            if (!c.Present) return Fail(Vectors.SS, err, out fault);
        }
        else
        {
            if (!c.Readable) return Fail(Vectors.GP, err, out fault);
            if ((!c.IsCode || !c.Conforming) && dpl < Math.Max(cpl, rpl)) return Fail(Vectors.GP, err, out fault);
            if (!c.Present) return Fail(Vectors.NP, err, out fault);
        }
        cache = c;
        return true;
    }

    private bool TryReadDescriptor(ushort sel, out ulong d)
    {
        d = 0;
        int index = sel >> 3;
        bool ldt = (sel & 4) != 0;
        if (!ldt && index >= Boot.XenLayout.FirstReservedGdtEntry && index < Boot.XenLayout.FirstReservedGdtEntry + Boot.XenLayout.ReservedGdtEntries)
        {
            d = layout.ReservedGdtDescriptor(index);
            return d != 0;
        }
        uint tableBase = ldt ? cpu.Ldtr.Base : cpu.GdtrBase;
        uint limit = ldt ? (cpu.Ldtr.Usable ? cpu.Ldtr.Limit : 0) : cpu.GdtrLimit;
        if (ldt && !cpu.Ldtr.Usable) return false;
        if ((uint)index * 8 + 7 > limit) return false;
        uint lin = tableBase + (uint)index * 8;
        if (!cpu.Translate(lin, Access.Read, false, out ulong pa) || !cpu.Translate(lin + 7, Access.Read, false, out ulong pa2))
        {
            cpu.ClearFault();
            return false;
        }
        d = pa2 == pa + 7 ? cpu.Memory.Read64(pa) : cpu.ReadSystem(lin, 8);
        return true;
    }

    private static bool Fail(byte vector, uint err, out CpuEvent fault)
    {
        fault = new CpuEvent(vector, EventKind.Fault, true, err, 0, 0);
        return false;
    }
}
