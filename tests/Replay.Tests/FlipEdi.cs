using Replayvisor.Engine.Machine;

namespace Replayvisor.Replay.Tests;

/// <summary>A test-only engine perturbation: instruction <paramref name="at"/> gets a wrong result, EDI with <paramref name="mask"/> flipped as it retires.</summary>
internal sealed class FlipEdi(IRunInputs inner, ulong at, uint mask) : IRunInputs
{
    private bool _done;
    public ulong NextPoll(ulong icount) => _done ? inner.NextPoll(icount) : Math.Min(inner.NextPoll(icount), Math.Max(at + 1, icount));
    public bool Poll(XenMachine machine, bool blocked)
    {
        bool injected = inner.Poll(machine, blocked);
        if (!_done && machine.Icount == at + 1) { machine.Cpu.Edi ^= mask; _done = true; }
        return injected;
    }
    public bool WaitForInput(XenMachine machine) => inner.WaitForInput(machine);
    public ulong TimerDelay(ulong icount) => inner.TimerDelay(icount);
    public bool StopRequested => inner.StopRequested;
}
