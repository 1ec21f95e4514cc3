namespace Replayvisor.Engine.Xen;

/// <summary>
/// Which Xen a 32-bit PV guest is shown (docs/xen-model.md, "ABI profiles"): Xen 3.1 on a 32-bit
/// hypervisor, or Xen 4.19 on x86_64 running the guest through its compat layer
/// (xen/arch/x86/x86_64/compat/, xen/arch/x86/pv/). Where the two agree the model has one
/// behaviour; each difference asks <see cref="Hypervisor.Abi"/>.
/// </summary>
public enum XenAbi : byte
{
    /// <summary>Xen 3.1 (x86_32): what traces recorded before the option existed ran against.</summary>
    Xen3_1,
    /// <summary>Xen 4.19 (x86_64, compat guests): what guests built today expect.</summary>
    Xen4_19,
}

/// <summary>Names, versions and defaults of the <see cref="XenAbi"/> profiles.</summary>
public static class XenAbis
{
    /// <summary>
    /// The default for new runs, chosen by the kernel so that every guest runs: 4.19 for a PAE kernel
    /// (guests built today need its compat ABI, and guests built for 3.1 run on it too), 3.1 for a
    /// non-PAE kernel, which only a 32-bit hypervisor can run (64-bit Xen has no non-PAE guests).
    /// </summary>
    public static XenAbi For(bool pae) => pae ? XenAbi.Xen4_19 : XenAbi.Xen3_1;

    /// <summary>A trace whose header does not name a profile was recorded against Xen 3.1.</summary>
    public const XenAbi Unnamed = XenAbi.Xen3_1;

    /// <summary>Command-line values; "auto" is <see cref="For"/>.</summary>
    public static string[] Names => ["auto", "3.1", "4.19"];

    public static string Name(XenAbi abi) => abi == XenAbi.Xen3_1 ? "3.1" : "4.19";

    /// <summary>"3.1" or "4.19"; "auto" parses to null (<see cref="For"/> decides by the kernel).</summary>
    public static bool TryParse(string? s, out XenAbi? abi)
    {
        switch (s)
        {
            case "auto": abi = null; return true;
            case "3.1": abi = XenAbi.Xen3_1; return true;
            case "4.19": abi = XenAbi.Xen4_19; return true;
            default: abi = null; return false;
        }
    }

    /// <summary>
    /// Refuses a kernel the profile cannot run: libxc on a 64-bit Xen knows only "xen-3.0-x86_32p"
    /// among 32-bit guest types (xc_dom_x86.c), so 4.19 runs PAE kernels only.
    /// </summary>
    public static void CheckKernel(XenAbi abi, bool pae)
    {
        if (abi != XenAbi.Xen3_1 && !pae)
            throw new Boot.BootImageException(Boot.BootError.UnsupportedXenVersion,
                $"a non-PAE kernel (xen-3.0-x86_32) cannot run on Xen {Name(abi)}, which runs only PAE 32-bit guests (use --xen 3.1)");
    }

    /// <summary>XENVER_version: major &lt;&lt; 16 | minor (xen/common/kernel.c).</summary>
    public static uint Version(XenAbi abi) => abi == XenAbi.Xen3_1 ? 0x00030001u : 0x00040013u;
}
