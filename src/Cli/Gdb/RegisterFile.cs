using System.Buffers.Binary;
using System.Text;
using Replayvisor.Engine.Cpu;

namespace Replayvisor.Cli.Gdb;

/// <summary>
/// A vCPU's registers (the CPU's, or a parked vCPU's context: <see cref="Replayvisor.Replay.Stepping.VcpuContexts"/>) in the order and sizes of <see cref="TargetDescription"/>, hex-encoded
/// little-endian as the 'g' and 'p' packets carry them.
/// </summary>
public static class RegisterFile
{
    public const int Count = 41;
    private static readonly int[] SegOrder = [Seg.CS, Seg.SS, Seg.DS, Seg.ES, Seg.FS, Seg.GS];

    /// <summary>Register <paramref name="n"/>'s bytes, or null for a number the description does not have.</summary>
    public static byte[]? Read(CpuSnapshot cpu, int n)
    {
        var f = cpu.Fpu;
        switch (n)
        {
            case >= 0 and < 8: return U32(cpu.Gpr[n]);
            case 8: return U32(cpu.Eip);
            case 9: return U32(cpu.Eflags);
            case >= 10 and < 16: return U32(cpu.Segs[SegOrder[n - 10]].Selector);
            case >= 16 and < 24:
                int top = (f.Fsw >> 11) & 7;
                int physical = (top + n - 16) & 7; // ST(i) is physical register (TOP+i) mod 8 (SDM vol. 1 §8.1.2)
                return f.St.AsSpan(physical * 10, 10).ToArray();
            case 24: return U32(f.Fcw);
            case 25: return U32(f.Fsw);
            case 26: return U32(f.Ftw);
            case 27: return U32(f.Fcs);
            case 28: return U32(f.Fip);
            case 29: return U32(f.Fds);
            case 30: return U32(f.Fdp);
            case 31: return U32(f.Fop);
            case >= 32 and < 40: return f.Xmm.AsSpan((n - 32) * 16, 16).ToArray();
            case 40: return U32(f.Mxcsr);
            default: return null;
        }
    }

    /// <summary>Every register, hex, for the 'g' packet.</summary>
    public static string ReadAll(CpuSnapshot cpu)
    {
        var sb = new StringBuilder(Count * 16);
        for (int n = 0; n < Count; n++) sb.Append(Hex(Read(cpu, n)!));
        return sb.ToString();
    }

    public static string Hex(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(bytes);

    private static byte[] U32(uint v)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, v);
        return b;
    }
}
