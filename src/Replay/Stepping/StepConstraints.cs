using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Trace;

namespace Replayvisor.Replay.Stepping;

/// <summary>Which address space a breakpoint's address is in.</summary>
public enum AddressKind { Linear, Physical }

/// <summary>
/// Stop before executing the instruction at an address (linear: in the address space current when
/// it is reached), when <see cref="Condition"/> (if any) holds for the CPU there.
/// </summary>
public sealed record Breakpoint(int Id, ulong Address, AddressKind Kind = AddressKind.Linear)
{
    public Func<X86Cpu, bool>? Condition { get; init; }
}

/// <summary>What a watchpoint reacts to (gdb's watch, rwatch and awatch).</summary>
public enum WatchKind { Write, Read, Access }

/// <summary>Stop after an instruction (or the hypervisor on its behalf) touches [Address, Address+Length) of linear memory.</summary>
public sealed record Watchpoint(int Id, uint Address, int Length, WatchKind Kind)
{
    /// <summary>The longest range one watchpoint covers (its bytes are compared after every instruction).</summary>
    public const int MaxLength = 1 << 20;

    /// <summary>
    /// Whether [<paramref name="address"/>, +<paramref name="length"/>) ends at or below 4 GiB: a watched range must
    /// not wrap past 0xffffffff (its bytes would be read wrapped to address 0 while its accesses are checked unwrapped).
    /// </summary>
    public static bool Fits(uint address, long length) => length >= 1 && (ulong)address + (ulong)length <= 1UL << 32;

    /// <summary>Whether [<paramref name="address"/>, +<paramref name="length"/>) shares a byte with the watched range (in 64 bits: a range ending at 4 GiB does not wrap).</summary>
    public bool Overlaps(uint address, int length) =>
        address < (ulong)Address + (uint)Length && Address < (ulong)address + (uint)length;
}

/// <summary>Which recorded events stop a run (an empty filter stops at none).</summary>
public sealed record EventStop
{
    public bool AnyHypercall { get; init; }
    /// <summary>Hypercall numbers to stop at (any of them).</summary>
    public IReadOnlySet<int> Hypercalls { get; init; } = new HashSet<int>();
    public bool Upcall { get; init; }
    /// <summary>Exception vectors to stop at; <see cref="AnyException"/> for all.</summary>
    public IReadOnlySet<int> Vectors { get; init; } = new HashSet<int>();
    public bool AnyException { get; init; }
    public bool ConsoleOutput { get; init; }
    /// <summary>Stop once the trace's event with this index (file order, from 0) has happened.</summary>
    public long? EventIndex { get; init; }

    public bool Matches(TraceEvent e) => e switch
    {
        HypercallEvent h => AnyHypercall || Hypercalls.Contains(h.Number),
        UpcallEvent => Upcall,
        ExceptionEvent x => AnyException || Vectors.Contains(x.Vector),
        FailsafeEvent => AnyException,
        ConsoleOutputEvent => ConsoleOutput,
        _ => false,
    };

    public bool IsEmpty => !AnyHypercall && Hypercalls.Count == 0 && !Upcall && Vectors.Count == 0 && !AnyException && !ConsoleOutput && EventIndex == null;
}

/// <summary>What to stop at when running forward (rr's StepConstraints): whichever comes first.</summary>
public sealed record StepConstraints
{
    /// <summary>Stop when the instruction count reaches this (null: run to the end of the trace).</summary>
    public ulong? ToIcount { get; init; }
    public IReadOnlyList<Breakpoint> Breakpoints { get; init; } = [];
    public IReadOnlyList<Watchpoint> Watchpoints { get; init; } = [];
    public EventStop? Events { get; init; }
    /// <summary>
    /// Stop when the scheduler switches this vCPU onto the CPU (<see cref="StopKind.Scheduled"/>, after its
    /// schedule-in: what it has pending is delivered then). A vCPU already running does not stop the run.
    /// </summary>
    public int? UntilScheduled { get; init; }

    /// <summary>Watchpoints are checked after every instruction; breakpoints alone run at full speed.</summary>
    public bool NeedsSingleStep => Watchpoints.Count > 0;
}
