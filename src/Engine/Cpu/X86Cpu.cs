using Replayvisor.Engine.Cpu.Decode;
using Replayvisor.Engine.Memory;

namespace Replayvisor.Engine.Cpu;

/// <summary>General-purpose register indices in x86 encoding order.</summary>
public static class Reg
{
    public const int EAX = 0, ECX = 1, EDX = 2, EBX = 3, ESP = 4, EBP = 5, ESI = 6, EDI = 7;
    public static readonly string[] Names = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"];
}

/// <summary>
/// A deterministic IA-32 protected-mode CPU (one logical processor). State is plain data in
/// fields; behaviour is split by concern across partial-class files (flags, memory access,
/// paging, segmentation, execution) and instruction families under Handlers/.
/// </summary>
public sealed partial class X86Cpu
{
    public readonly uint[] Gpr = new uint[8];
    public uint Eip;
    public readonly SegmentCache[] Segs = new SegmentCache[Seg.Count];

    public uint Cr0 = Cr0Bits.PE | Cr0Bits.ET;
    public uint Cr2;
    public uint Cr3;
    public uint Cr4;
    /// <summary>IA32_EFER; only NXE (bit 11) has meaning here.</summary>
    public ulong Efer;
    public readonly uint[] Dr = new uint[8];

    public uint GdtrBase, GdtrLimit, IdtrBase, IdtrLimit;
    public SegmentCache Ldtr;
    public SegmentCache Tr;

    private int _cpl;

    /// <summary>Current privilege level, the RPL of CS after a successful load (SDM vol. 3 §5.5).</summary>
    public int Cpl
    {
        get => _cpl;
        set { _cpl = value; RefreshTlbKeys(); }
    }

    /// <summary>EFLAGS.IOPL.</summary>
    public int Iopl => (int)((FlagsReg >> Fl.IoplShift) & 3);

    public readonly FpuState Fpu = new();

    /// <summary>Retired-instruction count. The CPU is its only writer; the rule is documented in Execution.cs.</summary>
    public ulong Icount => _icount;
    private ulong _icount;

    public PhysicalMemory Memory { get; }
    public ICpuHost Host { get; set; }

    public X86Cpu(PhysicalMemory memory, ICpuHost host)
    {
        Memory = memory;
        Host = host;
        _ram = memory.Ram;
        _dirty = memory.DirtyFrames;
        _codeLines = memory.CodeLines;
        _blocks = new BlockCache(this);
        memory.CodeObserver = _blocks;
        for (int i = 0; i < Seg.Count; i++) Segs[i] = SegmentCache.Flat(0, i == Seg.CS ? (byte)0x9B : (byte)0x93);
        Ldtr = SegmentCache.Null(0);
        Tr = SegmentCache.Null(0);
        FlushTlb();
    }

    public uint Eax { get => Gpr[0]; set => Gpr[0] = value; }
    public uint Ecx { get => Gpr[1]; set => Gpr[1] = value; }
    public uint Edx { get => Gpr[2]; set => Gpr[2] = value; }
    public uint Ebx { get => Gpr[3]; set => Gpr[3] = value; }
    public uint Esp { get => Gpr[4]; set => Gpr[4] = value; }
    public uint Ebp { get => Gpr[5]; set => Gpr[5] = value; }
    public uint Esi { get => Gpr[6]; set => Gpr[6] = value; }
    public uint Edi { get => Gpr[7]; set => Gpr[7] = value; }

    public bool PagingEnabled => (Cr0 & Cr0Bits.PG) != 0;
    public bool Pae => (Cr4 & Cr4Bits.PAE) != 0;
    /// <summary>True when the code segment's default operand and address size is 32 bits.</summary>
    public bool Code32 => Segs[Seg.CS].Big;
}

public static class Cr0Bits
{
    public const uint PE = 1, MP = 2, EM = 4, TS = 8, ET = 0x10, NE = 0x20, WP = 0x10000, AM = 0x40000, PG = 0x80000000;
}

public static class Cr4Bits
{
    public const uint VME = 1, PVI = 2, TSD = 4, DE = 8, PSE = 0x10, PAE = 0x20, PGE = 0x80, OSFXSR = 0x200, OSXMMEXCPT = 0x400;
}

/// <summary>EFLAGS bits, SDM vol. 1 §3.4.3.</summary>
public static class Fl
{
    public const uint CF = 1, Fixed1 = 2, PF = 4, AF = 0x10, ZF = 0x40, SF = 0x80, TF = 0x100, IF = 0x200, DF = 0x400,
        OF = 0x800, IOPL = 0x3000, NT = 0x4000, RF = 0x10000, VM = 0x20000, AC = 0x40000, VIF = 0x80000, VIP = 0x100000, ID = 0x200000;
    public const uint Arith = CF | PF | AF | ZF | SF | OF;
    public const int IoplShift = 12;
}
