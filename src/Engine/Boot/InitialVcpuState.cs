namespace Replayvisor.Engine.Boot;

/// <summary>
/// vCPU0 at the first guest instruction (docs/xen-abi.md §7). General registers not listed are 0.
/// Cr3 is the plain CR3 register value (mfn &lt;&lt; 12); <see cref="XenLayout.PackCr3"/> gives the
/// vcpu_guest_context form.
/// </summary>
public sealed record InitialVcpuState
{
    public const uint VgcfInKernel = 4;
    public const uint VgcfOnline = 0x20;
    public const int VmAssistPaeExtendedCr3 = 3;

    public required uint Eip { get; init; }
    public required uint Esp { get; init; }
    /// <summary>VA of start_info.</summary>
    public required uint Esi { get; init; }
    public uint Eax { get; init; }
    public uint Ebx { get; init; }
    public uint Ecx { get; init; }
    public uint Edx { get; init; }
    public uint Edi { get; init; }
    public uint Ebp { get; init; }
    /// <summary>IF set; events stay off through evtchn_upcall_mask = 1.</summary>
    public uint Eflags { get; init; } = 0x200;
    public ushort Cs { get; init; } = XenLayout.FlatKernelCs;
    public ushort Ds { get; init; } = XenLayout.FlatKernelDs;
    public ushort Es { get; init; } = XenLayout.FlatKernelDs;
    public ushort Fs { get; init; } = XenLayout.FlatKernelDs;
    public ushort Gs { get; init; } = XenLayout.FlatKernelDs;
    public ushort Ss { get; init; } = XenLayout.FlatKernelSs;
    /// <summary>Ring-1 stack for ring changes (stack_switch): the same SS:ESP.</summary>
    public required ushort KernelSs { get; init; }
    public required uint KernelSp { get; init; }
    public required uint Cr3Mfn { get; init; }
    public uint Cr3 => Cr3Mfn << 12;
    /// <summary>VMASST bitmap: bit 3 (pae_extended_cr3) for a PAE kernel (§7).</summary>
    public required uint VmAssist { get; init; }
    /// <summary>VGCF flags: in_kernel | online.</summary>
    public uint Flags { get; init; } = VgcfInKernel | VgcfOnline;
    /// <summary>Only the reserved flat segments at boot.</summary>
    public uint GdtEntries { get; init; }
}
