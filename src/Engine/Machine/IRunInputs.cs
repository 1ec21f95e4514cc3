namespace Replayvisor.Engine.Machine;

/// <summary>
/// The machine's door for asynchronous inputs (docs/architecture.md, determinism contract 2 and 3): console
/// input and chaos delays enter only at instruction boundaries the source chooses, and the source
/// logs (record) or reads (replay) each one with its instruction count. Stopping for a poll that
/// injects nothing leaves the run exactly as if the machine had not stopped.
/// </summary>
public interface IRunInputs
{
    /// <summary>The next instruction count (≥ icount) at which to call <see cref="Poll"/>; ulong.MaxValue for never.</summary>
    ulong NextPoll(ulong icount);

    /// <summary>Called at an instruction boundary: at the count <see cref="NextPoll"/> gave, or while the vCPU is blocked. True when input was injected.</summary>
    bool Poll(XenMachine machine, bool blocked);

    /// <summary>The vCPU is blocked and no timer can wake it: wait for input and inject it. False when none can ever come.</summary>
    bool WaitForInput(XenMachine machine);

    /// <summary>Extra instructions by which a timer due now may be delivered late (chaos mode); 0 otherwise. Called once per arming.</summary>
    ulong TimerDelay(ulong icount);

    /// <summary>True when the run should end now (Ctrl-C, SIGTERM, replay reached its target).</summary>
    bool StopRequested { get; }
}

/// <summary>No inputs at all: a plain deterministic run.</summary>
public sealed class NoInputs : IRunInputs
{
    public static readonly NoInputs Instance = new();
    public ulong NextPoll(ulong icount) => ulong.MaxValue;
    public bool Poll(XenMachine machine, bool blocked) => false;
    public bool WaitForInput(XenMachine machine) => false;
    public ulong TimerDelay(ulong icount) => 0;
    public bool StopRequested => false;
}
