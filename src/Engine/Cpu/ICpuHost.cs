namespace Replayvisor.Engine.Cpu;

/// <summary>How an exception or interrupt arose (SDM vol. 3 §6.5: faults restart, traps report after).</summary>
public enum EventKind : byte
{
    /// <summary>A fault: EIP and all state are those before the instruction; it did not retire.</summary>
    Fault,
    /// <summary>A trap (int3, into, single-step): the instruction retired, EIP is the next instruction.</summary>
    Trap,
    /// <summary>A software interrupt <c>int n</c> (also <c>int 0x82</c> hypercalls): retired, EIP is next.</summary>
    SoftwareInterrupt,
    /// <summary>SYSENTER retired into the host (the entry point IA32_SYSENTER_EIP names); the vector is 0.</summary>
    Sysenter,
    /// <summary>SYSCALL retired into the host (EFER.SCE set); EIP is next; the vector is 0.</summary>
    Syscall,
}

/// <summary>One exception or interrupt raised by the CPU, handed to <see cref="ICpuHost.Deliver"/>.</summary>
public readonly record struct CpuEvent(
    byte Vector, EventKind Kind, bool HasErrorCode, uint ErrorCode, uint InstructionEip, uint Cr2)
{
    public override string ToString() =>
        $"vector {Vector} ({Kind}) error {(HasErrorCode ? $"0x{ErrorCode:x}" : "none")} at eip 0x{InstructionEip:x8}" +
        (Vector == Vectors.PF ? $" cr2 0x{Cr2:x8}" : "");
}

/// <summary>Exception vectors, SDM vol. 3 table 6-1.</summary>
public static class Vectors
{
    public const byte DE = 0, DB = 1, NMI = 2, BP = 3, OF = 4, BR = 5, UD = 6, NM = 7, DF = 8,
        TS = 10, NP = 11, SS = 12, GP = 13, PF = 14, MF = 16, AC = 17, MC = 18, XM = 19;

    public static bool PushesErrorCode(int v) => v is DF or TS or NP or SS or GP or PF or AC;
}

/// <summary>
/// Everything the CPU cannot decide by itself: delivery of exceptions and interrupts, and the
/// values of inputs (TSC, CPUID, I/O ports, MSRs). The Xen model implements it for guests; tests
/// implement it to observe the CPU. Nothing here may read the host: the machine routes inputs
/// through its one input interface.
/// </summary>
public interface ICpuHost
{
    /// <summary>Deliver an exception or interrupt. The host changes CPU state (push a frame, load CS:EIP) or stops the CPU.</summary>
    void Deliver(X86Cpu cpu, in CpuEvent e);

    /// <summary>hlt at CPL 0 (at other CPLs the CPU raises #GP(0) itself).</summary>
    void Halt(X86Cpu cpu);

    ulong ReadTsc(X86Cpu cpu);

    void Cpuid(X86Cpu cpu, uint leaf, uint subleaf, out uint eax, out uint ebx, out uint ecx, out uint edx);

    uint PortIn(X86Cpu cpu, ushort port, int size);

    void PortOut(X86Cpu cpu, ushort port, int size, uint value);

    /// <summary>rdmsr at CPL 0; return false to raise #GP(0).</summary>
    bool ReadMsr(X86Cpu cpu, uint msr, out ulong value);

    /// <summary>wrmsr at CPL 0; return false to raise #GP(0).</summary>
    bool WriteMsr(X86Cpu cpu, uint msr, ulong value);
}
