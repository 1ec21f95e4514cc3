using Replayvisor.Engine.Cpu;

namespace Replayvisor.Engine.Xen;

/// <summary>
/// SYSENTER and SYSCALL from a compat guest (4.19 profile; docs/xen-model.md "System calls"), as
/// xen/arch/x86/x86_64/entry.S sysenter_entry and compat/entry.S cstar_enter, compat_syscall and
/// compat_sysenter deliver them. Under 3.1 they never get here: the hypervisor leaves EFER.SCE
/// clear (SYSCALL raises #UD) and IA32_SYSENTER_CS null (SYSENTER raises #GP(0)).
/// </summary>
public sealed partial class Hypervisor
{
    /// <summary>FLAT_COMPAT_USER_CS / _SS (asm-x86/desc.h), which compat_syscall and compat_sysenter report.</summary>
    public const ushort FlatCompatUserCs = 0xE02B, FlatCompatUserSs = 0xE033;
    /// <summary>__HYPERVISOR_CS, what 64-bit Xen loads into IA32_SYSENTER_CS.</summary>
    public const ushort XenCs = 0xE008;

    /// <summary>Xen's MSR values for the CPU's own SYSENTER/SYSCALL checks (never the guest's rdmsr view).</summary>
    private void ArmFastSystemCalls()
    {
        if (Xen4) Cpu.Efer |= Engine.Cpu.Handlers.FastSystemCall.EferSce;
    }

    /// <summary>
    /// SYSENTER: the hardware saved neither EIP nor ESP, so Xen's frame holds EIP 0, CS 3 (a null ring-3
    /// selector), ESP 0 and SS FLAT_COMPAT_USER_SS; the saved EFLAGS are the guest's with VM and RF
    /// cleared by the CPU and IF forced set (sysenter_entry). Without a callback address the guest's
    /// #GP handler gets that frame with error code 0; a null callback selector borrows the #GP
    /// handler's (compat_sysenter). CS 3 makes the bounce switch to the kernel stack, whatever ring ran it.
    /// </summary>
    private void Sysenter()
    {
        var v = Vcpu;
        _f.Eflags = (_f.Eflags & ~(Fl.VM | Fl.RF)) | Fl.IF;
        _f.Eip = 0;
        _f.Cs = 3;
        _f.Esp = 0;
        _f.Ss = FlatCompatUserSs;
        ref TrapInfo gp = ref v.Traps[Vectors.GP];
        if (v.Sysenter.Eip == 0)
        {
            BounceSystemCallFault(ref gp);
            return;
        }
        ushort cs = (v.Sysenter.Cs & ~3) != 0 ? v.Sysenter.Cs : gp.Cs;
        CreateBounceFrame(cs, v.Sysenter.Eip, v.SysenterMasksEvents ? TbfInterrupt : 0, 0);
    }

    /// <summary>
    /// SYSCALL (cstar_enter, compat_syscall): the frame holds the next EIP, CS FLAT_COMPAT_USER_CS, the
    /// guest's ESP, SS FLAT_COMPAT_USER_SS and the guest's EFLAGS (R11). A null syscall32 selector sends the guest a #GP(0)
    /// at the SYSCALL instruction itself (compat_syscall_gpf: EIP moved back by 2).
    /// </summary>
    private void Syscall(uint insnEip)
    {
        var v = Vcpu;
        _f.Cs = FlatCompatUserCs;
        _f.Ss = FlatCompatUserSs;
        if ((v.Syscall32.Cs & ~3) == 0)
        {
            _f.Eip = insnEip;
            BounceSystemCallFault(ref v.Traps[Vectors.GP]);
            return;
        }
        CreateBounceFrame(v.Syscall32.Cs, v.Syscall32.Eip, v.Syscall32MasksEvents ? TbfInterrupt : 0, 0);
    }

    /// <summary>The #GP(0) both paths give without a callback: the guest's #GP trap entry, masking events if its flag 4 says so.</summary>
    private void BounceSystemCallFault(ref TrapInfo gp)
    {
        uint eip = _f.Eip;
        if (!CreateBounceFrame(gp.Cs, gp.Address, TbfException | TbfErrorCode | (gp.MasksEvents ? TbfInterrupt : 0), 0)) return;
        Stats.ExceptionsByVector[Vectors.GP]++;
        Observer?.OnExceptionAt(Cpu.Icount, Vectors.GP, 0, 0, eip, gp.Address);
    }
}
