namespace Replayvisor.Engine.Cpu;

/// <summary>
/// x87 and SSE register state as fxsave lays it out (SDM vol. 1 §10.5.1). Only state movement
/// (fninit, fnstcw/fldcw, fnstsw, fnclex, fxsave/fxrstor, fnsave/frstor) is implemented; x87 and
/// SSE arithmetic stop the machine as unsupported.
/// </summary>
public sealed class FpuState
{
    public ushort Fcw = 0x037F;
    public ushort Fsw;
    /// <summary>Full 16-bit tag word (2 bits per register; 3 = empty).</summary>
    public ushort Ftw = 0xFFFF;
    public ushort Fop;
    public uint Fip, Fdp;
    public ushort Fcs, Fds;
    public uint Mxcsr = 0x1F80;
    /// <summary>ST0-ST7 as 10-byte extended values, physical register order R0-R7.</summary>
    public readonly byte[] St = new byte[80];
    public readonly byte[] Xmm = new byte[128];

    /// <summary>fninit (SDM vol. 2 FINIT/FNINIT).</summary>
    public void Init()
    {
        Fcw = 0x037F; Fsw = 0; Ftw = 0xFFFF; Fop = 0; Fip = 0; Fdp = 0; Fcs = 0; Fds = 0;
    }

    public void CopyFrom(FpuState o)
    {
        Fcw = o.Fcw; Fsw = o.Fsw; Ftw = o.Ftw; Fop = o.Fop; Fip = o.Fip; Fdp = o.Fdp; Fcs = o.Fcs; Fds = o.Fds; Mxcsr = o.Mxcsr;
        o.St.CopyTo(St, 0); o.Xmm.CopyTo(Xmm, 0);
    }
}
