namespace Replayvisor.Engine.Xen;

/// <summary>
/// Hypercall preemption (docs/xen-model.md, "Continuations"). A long batch (mmu_update, mmuext_op,
/// multicall) asks <see cref="PreemptBefore"/> before each element; when it says stop, the hypercall
/// records a continuation (hypercall_create_continuation, arch/x86/hypercall.c): the argument
/// registers get the remaining work, EAX the hypercall number, and EIP moves back 2 bytes onto the
/// int 0x82, so the pending event is delivered first and the guest then re-issues the rest. Inside a
/// multicall the continuation goes into the entry instead and the multicall continues itself.
/// </summary>
public sealed partial class Hypervisor
{
    /// <summary>A continuation: the hypercall and the first <see cref="Count"/> arguments it is re-issued with.</summary>
    internal readonly record struct Continuation(int Nr, int Count, HypercallArgs Args);

    private Continuation? _continuation;

    /// <summary>
    /// hypercall_preempt_check(): an event the vCPU must take (local_events_need_delivery: upcall
    /// pending and not masked). Softirqs never preempt here: time stands still inside a hypercall.
    /// Xen 3.1 checks before every element, 4.19 before every element but the first (mm.c
    /// do_mmu_update/do_mmuext_op, common/multicall.c), so 4.19 always makes progress.
    /// </summary>
    internal bool PreemptBefore(uint index) =>
        (index != 0 || !Xen4) && SharedInfo.UpcallMask(Vcpu.Id) == 0 && SharedInfo.UpcallPending(Vcpu.Id) != 0;

    /// <summary>hypercall_create_continuation: returns the hypercall number, which becomes EAX.</summary>
    internal long CreateContinuation(int nr, int count, in HypercallArgs args)
    {
        _continuation = new Continuation(nr, count, args);
        return nr;
    }

    /// <summary>Takes the continuation a multicall entry just created (null if it completed).</summary>
    internal Continuation? TakeContinuation()
    {
        var k = _continuation;
        _continuation = null;
        return k;
    }

    /// <summary>A top-level continuation: new argument registers, and EIP back onto the int 0x82 (CD 82).</summary>
    private void ApplyContinuation(in Continuation k)
    {
        var c = Cpu;
        var a = k.Args;
        if (k.Count > 0) c.Ebx = a.A1;
        if (k.Count > 1) c.Ecx = a.A2;
        if (k.Count > 2) c.Edx = a.A3;
        if (k.Count > 3) c.Esi = a.A4;
        if (k.Count > 4) c.Edi = a.A5;
        if (k.Count > 5) c.Ebp = a.A6;
        _f.Eip -= 2;
    }
}
