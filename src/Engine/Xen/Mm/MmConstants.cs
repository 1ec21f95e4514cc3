namespace Replayvisor.Engine.Xen.Mm;

/// <summary>mmu_update commands: the low bits of req.ptr (xen-abi.md §5, §10.3).</summary>
public static class MmuCmd
{
    public const uint NormalPtUpdate = 0, MachphysUpdate = 1, PtUpdatePreserveAd = 2;
    /// <summary>Set in count by a preempted (continued) call: *done is read back and added to.</summary>
    public const uint UpdatePreempted = 0x80000000;
}

/// <summary>MMUEXT_ commands (xen-abi.md §5, §10.4).</summary>
public static class MmuextCmd
{
    public const uint PinL1Table = 0, PinL2Table = 1, PinL3Table = 2, PinL4Table = 3, UnpinTable = 4, NewBaseptr = 5,
        TlbFlushLocal = 6, InvlpgLocal = 7, TlbFlushMulti = 8, InvlpgMulti = 9, TlbFlushAll = 10, InvlpgAll = 11,
        FlushCache = 12, SetLdt = 13, NewUserBaseptr = 15;
}

/// <summary>update_va_mapping flags (xen-abi.md §5).</summary>
public static class Uvmf
{
    public const uint None = 0, TlbFlush = 1, Invlpg = 2, FlushTypeMask = 3, Local = 0, All = 4;
}

/// <summary>vm_assist commands and types (xen-abi.md §5; MAX = 3 in Xen 3.1).</summary>
public static class Vmasst
{
    public const uint CmdEnable = 0, CmdDisable = 1;
    public const int FourGbSegments = 0, FourGbSegmentsNotify = 1, WritablePagetables = 2, PaeExtendedCr3 = 3,
        ArchitecturalIopl = 4, RunstateUpdateFlag = 5;
    /// <summary>Types Xen 3.1 knows (MAX_VMASST_TYPE 3).</summary>
    public const uint Valid31 = 0xF;
    /// <summary>COMPAT_VM_ASSIST_VALID of Xen 4.19 (asm-x86/config.h): types 0-5; m2p_strict (32) is 64-bit only.</summary>
    public const uint ValidCompat = 0x3F;
}

/// <summary>Reserved domain ids (xen-abi.md §5).</summary>
public static class DomId
{
    public const uint Self = 0x7FF0, Io = 0x7FF1, Xen = 0x7FF2;
}

/// <summary>Page-table entry bits (SDM vol. 3 §4.3, §4.4).</summary>
internal static class Pte
{
    public const ulong P = 0x001, RW = 0x002, U = 0x004, A = 0x020, D = 0x040, PSE = 0x080, G = 0x100;
    public const ulong Nx = 1ul << 63;
}
