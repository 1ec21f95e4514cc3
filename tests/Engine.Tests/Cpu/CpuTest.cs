using Iced.Intel;
using Replayvisor.Engine.Cpu;

namespace Replayvisor.Engine.Tests.Cpu;

/// <summary>Shared helpers for the instruction-family tests.</summary>
public static class CpuTest
{
    public const uint CF = Fl.CF, PF = Fl.PF, AF = Fl.AF, ZF = Fl.ZF, SF = Fl.SF, OF = Fl.OF;
    public const uint Arith = Fl.Arith;

    /// <summary>Assembles code (+hlt), applies setup, runs to hlt or the first event.</summary>
    public static TestMachine Exec(CpuTier blockCache, Action<Assembler> code, Action<X86Cpu>? setup = null)
    {
        var m = new TestMachine(blockCache: blockCache).Load(code);
        setup?.Invoke(m.Cpu);
        m.Run();
        return m;
    }

    /// <summary>Asserts the flags in mask (hex in the message).</summary>
    public static void Flags(X86Cpu c, uint mask, uint expected) =>
        Assert.Equal($"{expected & mask:x}", $"{c.Eflags & mask:x}");

    public static void Halted(TestMachine m)
    {
        Assert.Empty(m.Host.Events);
        Assert.Equal(1, m.Host.Halts);
    }

    /// <summary>Asserts exactly one fault with the vector (and error code), reported at the instruction's EIP.</summary>
    public static void Faulted(TestMachine m, byte vector, uint eip, uint error = 0)
    {
        var e = Assert.Single(m.Host.Events);
        Assert.Equal(vector, e.Vector);
        Assert.Equal(EventKind.Fault, e.Kind);
        Assert.Equal(eip, e.InstructionEip);
        if (e.HasErrorCode) Assert.Equal(error, e.ErrorCode);
        Assert.Equal(eip, m.Cpu.Eip);
    }

    /// <summary>Makes DS unusable, so any DS access raises #GP(0).</summary>
    public static void NullDs(X86Cpu c) => c.Segs[Seg.DS] = SegmentCache.Null(0);
}
