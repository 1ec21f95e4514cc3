using Replayvisor.Engine.State;

namespace Replayvisor.Engine.Cpu;

/// <summary>
/// Switching the one software CPU between vCPUs (docs/xen-model.md, "Several vCPUs"): the registers
/// of the vCPU that stops running are parked in a <see cref="CpuSnapshot"/> and another's are loaded.
/// The instruction count is the machine's, shared by every vCPU; the TLB is flushed (it is keyed by
/// CR3 only); decoded blocks stay, keyed by physical address and code size.
/// </summary>
public sealed partial class X86Cpu
{
    /// <summary>The architectural registers as plain data (no TLB; the count is the machine's).</summary>
    public CpuSnapshot SaveContext()
    {
        var fpu = new FpuState();
        fpu.CopyFrom(Fpu);
        return new CpuSnapshot
        {
            Gpr = (uint[])Gpr.Clone(), Eip = Eip, Eflags = Eflags, Segs = (SegmentCache[])Segs.Clone(), Ldtr = Ldtr, Tr = Tr,
            Cr0 = Cr0, Cr2 = Cr2, Cr3 = Cr3, Cr4 = Cr4, Efer = Efer, Dr = (uint[])Dr.Clone(),
            GdtrBase = GdtrBase, GdtrLimit = GdtrLimit, IdtrBase = IdtrBase, IdtrLimit = IdtrLimit,
            Cpl = Cpl, Icount = 0, Fpu = fpu, Tlb = [], TlbGeneration = 0, TlbGlobalGeneration = 0,
        };
    }

    /// <summary>Loads a parked vCPU's registers; the count, decoded blocks and host stay; the TLB is flushed.</summary>
    public void LoadContext(CpuSnapshot s)
    {
        ArgumentNullException.ThrowIfNull(s);
        s.Gpr.CopyTo(Gpr, 0);
        Eip = s.Eip;
        Eflags = s.Eflags;
        s.Segs.CopyTo(Segs, 0);
        Ldtr = s.Ldtr; Tr = s.Tr;
        Cr0 = s.Cr0; Cr2 = s.Cr2; Cr3 = s.Cr3; Cr4 = s.Cr4; Efer = s.Efer;
        s.Dr.CopyTo(Dr, 0);
        GdtrBase = s.GdtrBase; GdtrLimit = s.GdtrLimit; IdtrBase = s.IdtrBase; IdtrLimit = s.IdtrLimit;
        Fpu.CopyFrom(s.Fpu);
        Cpl = s.Cpl;
        Exit = 0;
        FlushTlb();
    }

    /// <summary>The canonical encoding of a parked context: what <see cref="WriteState"/> writes, without the count.</summary>
    public static void WriteContext(CanonicalWriter w, CpuSnapshot s)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(s);
        w.Tag("cpu-context");
        foreach (uint r in s.Gpr) w.U32(r);
        w.U32(s.Eip);
        w.U32(s.Eflags);
        foreach (var seg in s.Segs) WriteSeg(w, seg);
        WriteSeg(w, s.Ldtr);
        WriteSeg(w, s.Tr);
        w.U32(s.Cr0); w.U32(s.Cr2); w.U32(s.Cr3); w.U32(s.Cr4); w.U64(s.Efer);
        foreach (uint d in s.Dr) w.U32(d);
        w.U32(s.GdtrBase); w.U32(s.GdtrLimit); w.U32(s.IdtrBase); w.U32(s.IdtrLimit);
        w.I32(s.Cpl);
        var f = s.Fpu;
        w.U16(f.Fcw); w.U16(f.Fsw); w.U16(f.Ftw); w.U16(f.Fop);
        w.U32(f.Fip); w.U32(f.Fdp); w.U16(f.Fcs); w.U16(f.Fds); w.U32(f.Mxcsr);
        w.Bytes(f.St); w.Bytes(f.Xmm);
    }
}
