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

public static class DataArea
{
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
    public uint[] Regs = new uint[8];
    public uint Eflags;
    public byte[] Data = [];
    /// <summary>Emulator only: retired instructions (including the final hlt).</summary>
    public ulong Icount;
    public string? Message;

    public override string ToString()
    {
        var sb = new System.Text.StringBuilder();
        sb.Append(End);
        if (End == EndKind.Exception) sb.Append($" vector {Vector}{(Signal != 0 ? $" (signal {Signal})" : "")} at eip {Eip:x8}");
        if (Message != null) sb.Append($" [{Message}]");
        sb.Append("; ");
        for (int i = 0; i < 8; i++) sb.Append($"{Reg.Names[i]}={Regs[i]:x8} ");
        sb.Append($"eflags={Eflags:x8}");
        return sb.ToString();
    }
}
