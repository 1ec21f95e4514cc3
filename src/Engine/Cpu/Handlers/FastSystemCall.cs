using Iced.Intel;
using Replayvisor.Engine.Cpu.Decode;

namespace Replayvisor.Engine.Cpu.Handlers;

/// <summary>
/// SYSENTER, SYSCALL, SYSEXIT and SYSRET (SDM vol. 2). This CPU never runs the ring-0 side itself:
/// SYSENTER and SYSCALL retire into the host (<see cref="EventKind.Sysenter"/>, <see cref="EventKind.Syscall"/>),
/// which plays the entry point the MSRs name. SYSENTER raises #GP(0) when IA32_SYSENTER_CS (read from the
/// host, which owns the MSRs) is a null selector; SYSCALL raises #UD unless EFER.SCE, which only the host
/// sets. SYSEXIT outside ring 0 raises #GP(0); SYSRET outside 64-bit mode raises #UD.
/// </summary>
internal static unsafe class FastSystemCall
{
    public const uint MsrSysenterCs = 0x174;
    public const ulong EferSce = 1;

    public static delegate*<X86Cpu, ref DecodedInsn, void> Select(ref DecodedInsn d)
    {
        switch (d.Insn.Mnemonic)
        {
            case Mnemonic.Sysenter: return &Sysenter;
            case Mnemonic.Syscall: return &Syscall;
            case Mnemonic.Sysexit: return &Sysexit;
            case Mnemonic.Sysret: return &Misc.Ud;
            default: return null;
        }
    }

    private static void Sysenter(X86Cpu c, ref DecodedInsn d)
    {
        if (!c.Host.ReadMsr(c, MsrSysenterCs, out ulong cs) || (cs & 0xFFFC) == 0) { c.RaiseGp(0); return; }
        c.RaiseAfter(0, EventKind.Sysenter);
    }

    private static void Syscall(X86Cpu c, ref DecodedInsn d)
    {
        if ((c.Efer & EferSce) == 0) { c.RaiseUd(); return; }
        c.RaiseAfter(0, EventKind.Syscall);
    }

    private static void Sysexit(X86Cpu c, ref DecodedInsn d)
    {
        if (c.Cpl != 0) { c.RaiseGp(0); return; }
        c.StopUnsupported(ref d); // a ring-0 SYSEXIT never happens to a PV guest
    }
}
