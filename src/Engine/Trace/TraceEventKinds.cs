namespace Replayvisor.Engine.Trace;

/// <summary>Which guest-visible time value a <see cref="TimeEvent"/> carries.</summary>
public enum TimeKind
{
    /// <summary>Xen system time in nanoseconds (vcpu_time_info.system_time).</summary>
    SystemTimeNs = 0,
    /// <summary>A value returned by rdtsc.</summary>
    Tsc = 1,
    /// <summary>Wallclock seconds (shared_info.wc_sec).</summary>
    WallclockSec = 2,
    /// <summary>Wallclock nanoseconds (shared_info.wc_nsec).</summary>
    WallclockNsec = 3,
}

/// <summary>What kind of asynchronous input an <see cref="AsyncEvent"/> injected.</summary>
public enum AsyncKind
{
    /// <summary>A Xen timer (set_timer_op or the periodic timer) fired; the port is VIRQ_TIMER's.</summary>
    TimerExpiry = 0,
    /// <summary>Console input arrived; the port is the console's event channel.</summary>
    ConsoleInputArrival = 1,
    /// <summary>Chaos mode delayed an input by a legal amount (the argument).</summary>
    ChaosDelay = 2,
}

/// <summary>The guest's SCHEDOP_shutdown reason code (xen/sched.h SHUTDOWN_*).</summary>
public enum ShutdownReason
{
    /// <summary>SHUTDOWN_poweroff.</summary>
    PowerOff = 0,
    /// <summary>SHUTDOWN_reboot.</summary>
    Reboot = 1,
    /// <summary>SHUTDOWN_suspend.</summary>
    Suspend = 2,
    /// <summary>SHUTDOWN_crash.</summary>
    Crash = 3,
}

/// <summary>Why the run ended.</summary>
public enum ExitKind
{
    /// <summary>The guest asked to shut down; see the reason.</summary>
    GuestShutdown = 0,
    /// <summary>The hypervisor model crashed the domain (e.g. a fault with no handler).</summary>
    DomainCrashed = 1,
    /// <summary>The run reached its maximum instruction count.</summary>
    InstructionLimit = 2,
    /// <summary>The recorder was asked to stop.</summary>
    Stopped = 3,
}

/// <summary>Where console input entered the run loop (ConsoleInputEvent key 2).</summary>
public enum ConsoleInputSite
{
    /// <summary>At a poll while the vCPU was running (or had just blocked in the last stretch of instructions).</summary>
    Poll = 0,
    /// <summary>At a poll in the blocked loop (the machine was already idling the vCPU).</summary>
    BlockedPoll = 1,
    /// <summary>While the machine waited for input with nothing else to do (IRunInputs.WaitForInput).</summary>
    Waiting = 2,
}
