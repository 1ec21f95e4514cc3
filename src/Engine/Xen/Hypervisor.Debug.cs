namespace Replayvisor.Engine.Xen;

/// <summary>
/// Debug registers (docs/xen-model.md, "Debug registers"): set_debugreg / get_debugreg and the
/// emulated mov to/from DRn. Xen 3.1 (x86_32/traps.c set_debugreg): DR0-3 below
/// HYPERVISOR_VIRT_START, DR7 fixed only when non-zero, I/O breakpoints refused, other registers
/// -EINVAL. Xen 4.19 (pv/misc-hypercalls.c set_debugreg, x86_emulate's x86emul_read_dr): any 32-bit
/// DR0-3, DR4/DR5 alias DR6/DR7 unless the guest's CR4.DE (-ENODEV), DR7 always fixed, I/O
/// breakpoints allowed with CR4.DE and kept aside (dr7_emul) for the I/O emulation, others -ENODEV.
/// </summary>
public sealed partial class Hypervisor
{
    private const uint Dr6Ones = 0xFFFF0FF0, Dr6Zeros = 0x00001000, Dr7Keep = 0xFFFF27FF, Dr7Ones = 0x00000400, Dr7Gd = 1u << 13;

    internal long SetDebugReg(int reg, uint value) => SetDebugReg(Vcpu, reg, value, Cpu.Dr);

    /// <summary>set_debugreg(v, reg, value): <paramref name="dr"/> is the CPU's DR0-7 of that vCPU (live or parked).</summary>
    private long SetDebugReg(VcpuState v, int reg, uint value, uint[] dr)
    {
        if (Xen4 && reg is 4 or 5)
        {
            if (v.GuestCr4De) return -Errno.ENODEV;
            reg += 2;
        }
        switch (reg)
        {
            case 0: case 1: case 2: case 3:
                if (!Xen4 && (ulong)value + 4 > Layout.HypervisorVirtStart) return -Errno.EPERM;
                break;
            case 6:
                value = (value & ~Dr6Zeros) | Dr6Ones;
                break;
            case 7:
                if (value != 0 || Xen4)
                {
                    value = (value & Dr7Keep) | Dr7Ones;
                    if ((value & Dr7Gd) != 0) return -Errno.EPERM;
                }
                uint io = 0;
                for (int i = 0; i < 4; i++)
                {
                    if (((value >> (16 + i * 4)) & 3) != 2) continue;
                    if (!Xen4 || !v.GuestCr4De) return -Errno.EPERM;
                    io |= value & (3u << (i * 2));
                }
                if (Xen4)
                {
                    v.Dr7Emul = (value & 0xFF) != 0 ? io : 0;
                    value &= ~io;
                }
                break;
            default:
                return Xen4 ? -Errno.ENODEV : -Errno.EINVAL;
        }
        v.DebugRegs[reg] = value;
        dr[reg] = value;
        return 0;
    }

    /// <summary>get_debugreg: the value, or a negative errno (-EINVAL on 3.1, -ENODEV on 4.19).</summary>
    internal long GetDebugReg(int reg)
    {
        var v = Vcpu;
        if (!Xen4) return (uint)reg > 7 ? -Errno.EINVAL : v.DebugRegs[reg];
        if (reg is 4 or 5)
        {
            if (v.GuestCr4De) return -Errno.ENODEV;
            reg += 2;
        }
        return reg switch
        {
            0 or 1 or 2 or 3 or 6 => v.DebugRegs[reg],
            7 => v.DebugRegs[7] | v.Dr7Emul,
            _ => -Errno.ENODEV,
        };
    }

    /// <summary>
    /// check_guest_io_breakpoint (pv/emul-priv-op.c): the emulated I/O breakpoints (4.19, guest CR4.DE)
    /// whose port range overlaps [port, port + size); their lengths come from DR7's LEN fields.
    /// </summary>
    private uint IoBreakpointHits(uint port, int size)
    {
        var v = Vcpu;
        if (!Xen4 || (v.Dr7Emul & 0xFF) == 0 || !v.GuestCr4De) return 0;
        uint hits = 0;
        for (int i = 0; i < 4; i++)
        {
            if ((v.Dr7Emul & (3u << (i * 2))) == 0) continue;
            uint start = v.DebugRegs[i];
            uint width = ((v.DebugRegs[7] >> (18 + i * 4)) & 3) switch { 0 => 1u, 1 => 2u, 2 => 8u, _ => 4u };
            if (start < port + (uint)size && start + width > port) hits |= 1u << i;
        }
        return hits;
    }
}
