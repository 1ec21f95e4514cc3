using System.Buffers.Binary;
using System.Text;

namespace Replayvisor.Engine.Boot;

/// <summary>
/// The Xen parameters as found in the image, before defaults and checks: filled from Xen ELF notes
/// or from the legacy <c>__xen_guest</c> string (docs/xen-abi.md §6). Unset values are null.
/// </summary>
internal sealed class XenGuestParams
{
    public XenNoteSource Source;
    public ulong? Entry, HypercallPage, VirtBase, PaddrOffset, HvStartLow;
    public ulong? LegacyHypercallPageNumber;
    public string? XenVersion, GuestOs, GuestVersion, Loader, PaeMode, Features;
    public bool BsdSymtab, SuspendCancel;
    public Dictionary<uint, byte[]> Notes { get; } = [];

    /// <summary>Applies one Xen note; later notes of the same type win.</summary>
    public void Apply(ElfNote note)
    {
        Notes[note.Type] = note.Desc;
        switch ((XenNoteType)note.Type)
        {
            case XenNoteType.Entry: Entry = Number(note.Desc); break;
            case XenNoteType.HypercallPage: HypercallPage = Number(note.Desc); break;
            case XenNoteType.VirtBase: VirtBase = Number(note.Desc); break;
            case XenNoteType.PaddrOffset: PaddrOffset = Number(note.Desc); break;
            case XenNoteType.HvStartLow: HvStartLow = Number(note.Desc); break;
            case XenNoteType.SuspendCancel: SuspendCancel = Number(note.Desc) != 0; break;
            case XenNoteType.XenVersion: XenVersion = Str(note.Desc); break;
            case XenNoteType.GuestOs: GuestOs = Str(note.Desc); break;
            case XenNoteType.GuestVersion: GuestVersion = Str(note.Desc); break;
            case XenNoteType.Loader: Loader = Str(note.Desc); break;
            case XenNoteType.PaeMode: PaeMode = Str(note.Desc); break;
            case XenNoteType.Features: Features = Str(note.Desc); break;
            // §6: BSD_SYMTAB "yes" asks for the symbol table.
            case XenNoteType.BsdSymtab: BsdSymtab = Str(note.Desc) == "yes"; break;
        }
    }

    /// <summary>§6: a numeric desc is an unsigned little-endian value of 1, 2, 4 or 8 bytes; any other size reads as 0.</summary>
    public static ulong Number(ReadOnlySpan<byte> desc) => desc.Length switch
    {
        1 => desc[0],
        2 => BinaryPrimitives.ReadUInt16LittleEndian(desc),
        4 => BinaryPrimitives.ReadUInt32LittleEndian(desc),
        8 => BinaryPrimitives.ReadUInt64LittleEndian(desc),
        _ => 0,
    };

    /// <summary>A string desc: NUL-terminated ASCII (a missing NUL ends at the desc end).</summary>
    public static string Str(ReadOnlySpan<byte> desc)
    {
        int end = desc.IndexOf((byte)0);
        return Encoding.ASCII.GetString(end < 0 ? desc : desc[..end]);
    }
}
