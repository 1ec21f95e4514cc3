using System.Text;
using Replayvisor.Engine.Memory;

namespace Replayvisor.Engine.Boot;

/// <summary>start_info offsets and flags (docs/xen-abi.md §4.1, size 0x450).</summary>
public static class StartInfo
{
    public const int Magic = 0x00;
    public const int MagicSize = 32;
    public const int NrPages = 0x20;
    public const int SharedInfo = 0x24;
    public const int Flags = 0x28;
    public const int StoreMfn = 0x2C;
    public const int StoreEvtchn = 0x30;
    public const int ConsoleMfn = 0x34;     // dom0: console.dom0.info_off
    public const int ConsoleEvtchn = 0x38;  // dom0: console.dom0.info_size
    public const int PtBase = 0x3C;
    public const int NrPtFrames = 0x40;
    public const int MfnList = 0x44;
    public const int ModStart = 0x48;
    public const int ModLen = 0x4C;
    public const int CmdLine = 0x50;
    public const int CmdLineSize = 1024;
    public const int Size = 0x450;

    public const uint SifPrivileged = 1;
    public const uint SifInitDomain = 2;

    /// <summary>The values written into the start_info page.</summary>
    public sealed record Fields(
        string Magic, uint NrPages, uint SharedInfoMachineAddress, uint Flags,
        uint StoreMfn, uint StoreEvtchn, uint ConsoleMfn, uint ConsoleEvtchn,
        uint PtBase, uint NrPtFrames, uint MfnList, byte[] CmdLine);

    public static void Write(PhysicalMemory mem, uint mfn, Fields f)
    {
        ArgumentNullException.ThrowIfNull(mem);
        ArgumentNullException.ThrowIfNull(f);
        ulong b = (ulong)mfn << 12;
        mem.ClearFrame(mfn);
        mem.WriteBytes(b + Magic, Encoding.ASCII.GetBytes(f.Magic)); // NUL from the cleared page
        mem.Write32(b + NrPages, f.NrPages);
        mem.Write32(b + SharedInfo, f.SharedInfoMachineAddress);
        mem.Write32(b + Flags, f.Flags);
        mem.Write32(b + StoreMfn, f.StoreMfn);
        mem.Write32(b + StoreEvtchn, f.StoreEvtchn);
        mem.Write32(b + ConsoleMfn, f.ConsoleMfn);
        mem.Write32(b + ConsoleEvtchn, f.ConsoleEvtchn);
        mem.Write32(b + PtBase, f.PtBase);
        mem.Write32(b + NrPtFrames, f.NrPtFrames);
        mem.Write32(b + MfnList, f.MfnList);
        mem.Write32(b + ModStart, 0);
        mem.Write32(b + ModLen, 0);
        mem.WriteBytes(b + CmdLine, f.CmdLine); // at most 1023 bytes, then the cleared NUL
    }
}
