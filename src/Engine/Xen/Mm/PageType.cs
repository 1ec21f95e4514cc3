namespace Replayvisor.Engine.Xen.Mm;

/// <summary>The type of a machine frame (docs/xen-abi.md §10.1). A frame has one type while its type count is non-zero.</summary>
public enum PageType : byte
{
    None, L1, L2, L3, L4, GdtPage, LdtPage, Writable,
}

/// <summary>Who owns a machine frame: page refs are only granted to the owner.</summary>
public enum FrameOwner : byte
{
    /// <summary>No one (the never-used frame 0, padding, frames past RAM).</summary>
    Nobody,
    /// <summary>Xen's private frames: M2P, its page tables, reserved GDT, TSS.</summary>
    Xen,
    /// <summary>The guest domain (its RAM, shared_info, frames Xen shares with it).</summary>
    Domain,
    /// <summary>DOMID_IO as a foreign domain: owns no RAM frame.</summary>
    Io,
}
