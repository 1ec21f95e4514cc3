namespace Replayvisor.Engine.Xen;

/// <summary>
/// The interrupted guest context as Xen's cpu_user_regs holds it between entry and return
/// (the selectors and the iret part; general registers stay in the CPU). Bounces and
/// HYPERVISOR_iret edit this; <see cref="Hypervisor.ReturnToGuest"/> checks and commits it.
/// </summary>
public struct GuestFrame
{
    public uint Eip, Eflags, Esp;
    public ushort Cs, Ss, Ds, Es, Fs, Gs;

    public readonly int Rpl => Cs & 3;
    public readonly bool Vm86 => (Eflags & Cpu.Fl.VM) != 0;
    /// <summary>Ring 2/3 or VM86: a bounce switches to kernel_ss:kernel_sp (§8.2).</summary>
    public readonly bool OuterRing => (Cs & 2) != 0 || Vm86;
}
