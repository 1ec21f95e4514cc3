namespace Replayvisor.Engine.Xen;

public sealed partial class Hypervisor
{
    /// <summary>set_debugreg (xen/arch/x86/traps.c, §12): DR0-3 below HYPERVISOR_VIRT_START, DR6/DR7 reserved bits fixed, DR7 GD and I/O breakpoints refused.</summary>
    internal long SetDebugReg(int reg, uint value)
    {
        switch (reg)
        {
            case 0: case 1: case 2: case 3:
                if ((ulong)value + 4 > Layout.HypervisorVirtStart) return -Errno.EPERM;
                break;
            case 6:
                value &= 0xFFFFEFFF;
                value |= 0xFFFF0FF0;
                break;
            case 7:
                if (value != 0)
                {
                    value &= 0xFFFF27FF;
                    value |= 0x00000400;
                    if ((value & (1u << 13)) != 0) return -Errno.EPERM;
                    for (int i = 0; i < 16; i += 2)
                        if (((value >> (i + 16)) & 3) == 2) return -Errno.EPERM;
                }
                break;
            default:
                return -Errno.EINVAL;
        }
        Vcpu.DebugRegs[reg] = value;
        Cpu.Dr[reg] = value;
        return 0;
    }
}
