namespace Replayvisor.Engine.Boot;

/// <summary>Why a guest image or build request was refused.</summary>
public enum BootError
{
    NotElf,
    UnsupportedClass,
    NotLittleEndian,
    UnsupportedMachine,
    NotExecutable,
    Truncated,
    NoXenNotes,
    BadNoteValue,
    UnsupportedXenVersion,
    UnsupportedLoader,
    UnsupportedFeature,
    BadAddressLayout,
    SegmentOutOfRange,
    DoesNotFit,
    BadOptions,
}

/// <summary>
/// A guest kernel that cannot be loaded, or a domain that cannot be built. The message is one line
/// saying why, fit to print as the CLI's error.
/// </summary>
public sealed class BootImageException : Exception
{
    public BootImageException(BootError error, string message) : base(message) => Error = error;

    public BootError Error { get; }
}
