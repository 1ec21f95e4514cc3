using System.Runtime.CompilerServices;

namespace Replayvisor.Engine.Cpu;

/// <summary>
/// Raising exceptions without .NET exceptions: a handler records the event and sets an exit
/// flag; the execution loop stops the block and hands the event to <see cref="ICpuHost.Deliver"/>.
/// A fault leaves EIP at the faulting instruction and the instruction does not retire.
/// </summary>
public sealed partial class X86Cpu
{
    /// <summary>Non-zero when the running block must stop after (or, for a fault, instead of) the current instruction.</summary>
    internal CpuExit Exit;
    private CpuEvent _pending;
    /// <summary>EIP of the instruction being executed.</summary>
    internal uint InsnEip;

    /// <summary>True once the current instruction has raised a fault.</summary>
    public bool Faulted
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (Exit & CpuExit.Fault) != 0;
    }

    /// <summary>The fault raised by the current instruction (valid while <see cref="Faulted"/>).</summary>
    public CpuEvent PendingEvent => _pending;

    /// <summary>Raises a fault; the first one raised by an instruction wins.</summary>
    public void RaiseFault(byte vector, uint errorCode, uint cr2 = 0)
    {
        if (Faulted) return;
        _pending = new CpuEvent(vector, EventKind.Fault, Vectors.PushesErrorCode(vector), errorCode, InsnEip, cr2);
        Exit |= CpuExit.Fault;
        Eip = InsnEip;
    }

    public void RaiseGp(uint errorCode = 0) => RaiseFault(Vectors.GP, errorCode);
    public void RaiseUd() => RaiseFault(Vectors.UD, 0);

    /// <summary>Raises #SS(err) for stack-segment faults and #GP(err) otherwise (SDM vol. 3 §6.15).</summary>
    public void RaiseSegFault(int seg, uint errorCode = 0) =>
        RaiseFault(seg == Seg.SS ? Vectors.SS : Vectors.GP, errorCode);

    /// <summary>Raises a trap or software interrupt after the current instruction retires.</summary>
    public void RaiseAfter(byte vector, EventKind kind)
    {
        _pending = new CpuEvent(vector, kind, false, 0, InsnEip, 0);
        Exit |= CpuExit.Event;
    }

    /// <summary>Ends the running block after the current instruction retires (its code was overwritten).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void EndBlockAfterThisInstruction() => Exit |= CpuExit.Branch;

    /// <summary>Forgets a fault raised while the host was working on the CPU's behalf.</summary>
    public void ClearFault() => Exit &= ~CpuExit.Fault;

    /// <summary>Asks the run loop to return after the current instruction (used by hosts, e.g. on shutdown).</summary>
    public void RequestStop() { _stopRequested = true; Exit |= CpuExit.Stop; }

    private bool _stopRequested;
}
