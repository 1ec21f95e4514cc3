using Replayvisor.Engine.Memory;

namespace Replayvisor.Engine.Boot;

/// <summary>shared_info layout (docs/xen-abi.md §4.2, §4.3) and its state at domain creation (§7).</summary>
public static class SharedInfo
{
    public const int MaxVirtCpus = 32;
    public const int VcpuInfoSize = 0x40;
    public const int VcpuUpcallPending = 0x00;
    public const int VcpuUpcallMask = 0x01;
    public const int VcpuPendingSel = 0x04;
    public const int VcpuCr2 = 0x08;
    public const int VcpuTime = 0x20;
    public const int EvtchnPending = 0x800;
    public const int EvtchnMask = 0x880;
    public const int WcVersion = 0x900;
    public const int WcSec = 0x904;
    public const int WcNsec = 0x908;
    public const int ArchMaxPfn = 0x90C;
    public const int ArchPfnToMfnFrameListList = 0x910;
    public const int ArchNmiReason = 0x914;
    public const int Size = 0xA18;
    public const int NrEventChannels = 1024;

    /// <summary>Zeroed, with evtchn_upcall_mask = 1 in all 32 vcpu_info slots (§7).</summary>
    public static void Initialise(PhysicalMemory mem, uint mfn)
    {
        ArgumentNullException.ThrowIfNull(mem);
        mem.ClearFrame(mfn);
        for (int v = 0; v < MaxVirtCpus; v++)
            mem.Write8(((ulong)mfn << 12) + (ulong)(v * VcpuInfoSize + VcpuUpcallMask), 1);
    }
}
