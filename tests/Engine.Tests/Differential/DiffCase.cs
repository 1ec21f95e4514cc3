using Replayvisor.Engine.Cpu;

namespace Replayvisor.Engine.Tests.Differential;

/// <summary>
/// One generated test: a code snippet and the machine state it starts from, plus what the SDM
/// leaves undefined after it. Addresses are absolute and identical natively and in the emulator.
/// </summary>
public sealed class DiffCase
{
    /// <summary>Linear address of the code page (the snippet starts here).</summary>
    public const uint CodeBase = 0x1000_0000;
    /// <summary>Linear address of the data area: a 4 KiB data page followed by a 4 KiB stack page.</summary>
    public const uint DataBase = 0x2000_0000;
    public const int DataSize = 0x2000;
    /// <summary>The page right above the data area; <see cref="Guard"/> says whether it is unmapped or read-only.</summary>
    public const uint GuardBase = DataBase + DataSize;
    /// <summary>Seed of the read-only guard page's fixed fill (GUARD_SEED in diffrunner.c).</summary>
    public const uint GuardSeed = 0x4755_4152;
    /// <summary>Initial ESP: inside the stack page, with room above for pops and ret.</summary>
    public const uint StackTop = DataBase + 0x1F00;
    /// <summary>The EFLAGS bits compared and set: CF PF AF ZF SF OF and DF.</summary>
    public const uint ComparedFlags = Fl.Arith | Fl.DF;

    public int Id;
    public string Family = "";
    public byte[] Code = [];
    /// <summary>eax ecx edx ebx esp ebp esi edi.</summary>
    public uint[] Regs = new uint[8];
    /// <summary>Initial arithmetic flags and DF (other bits are ignored).</summary>
    public uint Eflags;
    /// <summary>Seed of the xorshift32 fill of the data area (<see cref="DataArea.Fill"/>).</summary>
    public uint FillSeed;
    public List<(ushort Offset, byte[] Bytes)> Patches = new();
    /// <summary>What the page at <see cref="GuardBase"/> is during this case.</summary>
    public GuardPage Guard;
    /// <summary>
    /// The case depends on the privilege level (privileged instructions, SS loads), so only the
    /// ring-3 emulator runs are compared with the host; the ring-0 run is skipped.
    /// </summary>
    public bool Ring3Only;
    /// <summary>Data-area ranges (offset, length) not compared when the case faults: the SDM leaves them undefined there.</summary>
    public List<(int Offset, int Length)> DataUndefinedOnFault = new();
    /// <summary>EFLAGS bits the SDM leaves undefined after this snippet (see <see cref="SdmUndefined"/>).</summary>
    public uint UndefinedFlags;
    /// <summary>Per register, the bits whose final value is undefined (or host-defined, e.g. cpuid, rdtsc).</summary>
    public uint[] UndefinedRegBits = new uint[8];

    /// <summary>The data area as the snippet sees it at the start: the fill, then the patches.</summary>
    public byte[] InitialData()
    {
        var d = new byte[DataSize];
        DataArea.Fill(d, FillSeed);
        foreach (var (off, bytes) in Patches) bytes.CopyTo(d, off);
        return d;
    }
}

/// <summary>The page above the data area: unmapped (the default) or mapped read-only.</summary>
public enum GuardPage : uint { Unmapped = 0, ReadOnly = 1 }

public static class DataArea
{
    /// <summary>The read-only guard page's contents (the same on the host and in the emulator).</summary>
    public static byte[] GuardImage()
    {
        var g = new byte[0x1000];
        Fill(g, DiffCase.GuardSeed);
        return g;
    }

    /// <summary>xorshift32, four bytes per step; mirrors fill() in tests/native/diffrunner.c.</summary>
    public static void Fill(Span<byte> p, uint seed)
    {
        uint x = seed != 0 ? seed : 0x9E3779B9u;
        for (int i = 0; i + 3 < p.Length; i += 4)
        {
            x ^= x << 13; x ^= x >> 17; x ^= x << 5;
            p[i] = (byte)x; p[i + 1] = (byte)(x >> 8); p[i + 2] = (byte)(x >> 16); p[i + 3] = (byte)(x >> 24);
        }
    }
}

/// <summary>How a run ended.</summary>
public enum EndKind { Completed, Exception, Unsupported, Hung, WrongStop }

/// <summary>The final state of one run, native or emulated.</summary>
public sealed class Outcome
{
    public EndKind End;
    /// <summary>Native: the signal number (0 when completed).</summary>
    public int Signal;
    /// <summary>Exception vector (native: trapno from the signal context; emulator: the event's vector); -1 if none.</summary>
    public int Vector = -1;
    /// <summary>EIP reported with the exception (fault: the instruction; trap: the next one); for completed runs 0.</summary>
    public uint Eip;
    /// <summary>The exception's error code (0 when the vector has none: Linux reports 0 then).</summary>
    public uint ErrorCode;
    /// <summary>The faulting linear address of a #PF (meaningless for other vectors).</summary>
    public uint Cr2;
    /// <summary>Segment selectors at the end, es cs ss ds fs gs.</summary>
    public ushort[] Sregs = new ushort[6];
    /// <summary>Emulator only: the guard page after the run when it was read-only (null otherwise).</summary>
    public byte[]? Guard;
    public uint[] Regs = new uint[8];
    public uint Eflags;
    public byte[] Data = [];
    /// <summary>Emulator only: retired instructions (at ring 0 including the final hlt, which faults at ring 3).</summary>
    public ulong Icount;
    public string? Message;

    public override string ToString()
    {
        var sb = new System.Text.StringBuilder();
        sb.Append(End);
        if (End == EndKind.Exception) sb.Append($" vector {Vector}{(Signal != 0 ? $" (signal {Signal})" : "")} error {ErrorCode:x} at eip {Eip:x8}{(Vector == 14 ? $" cr2 {Cr2:x8}" : "")}");
        if (Message != null) sb.Append($" [{Message}]");
        sb.Append("; ");
        for (int i = 0; i < 8; i++) sb.Append($"{Reg.Names[i]}={Regs[i]:x8} ");
        sb.Append($"eflags={Eflags:x8} es={Sregs[0]:x4} cs={Sregs[1]:x4} ss={Sregs[2]:x4} ds={Sregs[3]:x4} fs={Sregs[4]:x4} gs={Sregs[5]:x4}");
        return sb.ToString();
    }
}
