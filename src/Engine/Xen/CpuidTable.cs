namespace Replayvisor.Engine.Xen;

/// <summary>
/// The fixed CPUID the guest sees (no host CPUID: determinism). A P6-family "GenuineIntel" part
/// with the features this CPU model implements, filtered as Xen 3.1's emulate_forced_invalid_op
/// does (xen-abi.md §8.3): leaf 1 EDX hides VME, DE, PSE, PGE, SEP and (for a domU) MTRR, leaf
/// 0x80000001 hides RDTSCP; leaves 0x40000000–2 are Xen's. Under the 4.19 profile DE and SEP
/// stay visible and leaf 0x80000001 shows SYSCALL (the model delivers SYSENTER and SYSCALL to the
/// compat guest's callbacks; docs/xen-model.md, "ABI profiles").
/// </summary>
public static class CpuidTable
{
    public const uint FeatFpu = 1u << 0, FeatVme = 1u << 1, FeatDe = 1u << 2, FeatPse = 1u << 3, FeatTsc = 1u << 4,
        FeatMsr = 1u << 5, FeatPae = 1u << 6, FeatCx8 = 1u << 8, FeatSep = 1u << 11, FeatMtrr = 1u << 12,
        FeatPge = 1u << 13, FeatCmov = 1u << 15;
    public const uint RdtscpBit = 1u << 27, SyscallBit = 1u << 11;

    /// <summary>Leaf 1 EDX before Xen's filtering.</summary>
    public const uint RawLeaf1Edx = FeatFpu | FeatVme | FeatDe | FeatPse | FeatTsc | FeatMsr | FeatPae | FeatCx8 | FeatSep | FeatMtrr | FeatPge | FeatCmov;

    public static void Query(uint leaf, uint subleaf, bool privileged, XenAbi abi, out uint eax, out uint ebx, out uint ecx, out uint edx)
    {
        _ = subleaf;
        eax = ebx = ecx = edx = 0;
        switch (leaf)
        {
            case 0:
                eax = 1; ebx = 0x756E6547; edx = 0x49656E69; ecx = 0x6C65746E; // "GenuineIntel"
                break;
            case 1:
                eax = 0x000006F2; // family 6 model 15 stepping 2
                ebx = 0x00000800; // clflush line 8 qwords, one logical processor, APIC id 0
                edx = RawLeaf1Edx & ~(FeatVme | FeatDe | FeatPse | FeatPge | FeatSep);
                if (abi != XenAbi.Xen3_1) edx |= FeatDe | FeatSep;
                if (!privileged) edx &= ~FeatMtrr;
                break;
            case 0x40000000:
                eax = 0x40000002; ebx = 0x566E6558; ecx = 0x65584D4D; edx = 0x4D4D566E; // "XenVMMXenVMM"
                break;
            case 0x40000001:
                eax = XenAbis.Version(abi);
                break;
            case 0x40000002:
                eax = 1; ebx = 0x40000000; // one hypercall page, MSR base 0x40000000
                break;
            case 0x80000000:
                eax = 0x80000004;
                break;
            case 0x80000001:
                edx = abi != XenAbi.Xen3_1 ? SyscallBit : 0;
                break;
            case 0x80000002: Brand(0, out eax, out ebx, out ecx, out edx); break;
            case 0x80000003: Brand(16, out eax, out ebx, out ecx, out edx); break;
            case 0x80000004: Brand(32, out eax, out ebx, out ecx, out edx); break;
        }
    }

    private static void Brand(int offset, out uint a, out uint b, out uint c, out uint d)
    {
        const string brand = "Replayvisor virtual IA-32 CPU\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
        uint W(int i) => (uint)(brand[offset + i] | brand[offset + i + 1] << 8 | brand[offset + i + 2] << 16 | brand[offset + i + 3] << 24);
        a = W(0); b = W(4); c = W(8); d = W(12);
    }
}
