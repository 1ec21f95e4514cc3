using System.Buffers.Binary;

namespace Replayvisor.Engine.Boot;

/// <summary>Splits a PT_NOTE segment or SHT_NOTE section into notes (namesz, descsz, type, name, desc; each padded to 4).</summary>
public static class ElfNoteReader
{
    /// <summary>
    /// All notes in <paramref name="blob"/>. A tail too short for a note header (padding) is
    /// ignored, as libelf does; a note whose name or descriptor runs past the end of the note area
    /// (an absurd namesz or descsz) makes the image unloadable instead of silently dropping the
    /// notes after it (which would build the domain from defaults).
    /// </summary>
    public static List<ElfNote> Read(ReadOnlySpan<byte> blob)
    {
        var notes = new List<ElfNote>();
        int pos = 0;
        while (blob.Length - pos >= 12)
        {
            uint nameSize = BinaryPrimitives.ReadUInt32LittleEndian(blob[pos..]);
            uint descSize = BinaryPrimitives.ReadUInt32LittleEndian(blob[(pos + 4)..]);
            uint type = BinaryPrimitives.ReadUInt32LittleEndian(blob[(pos + 8)..]);
            ulong nameStart = (ulong)pos + 12;
            ulong descStart = nameStart + Align4(nameSize);
            ulong next = descStart + Align4(descSize);
            if (descStart + descSize > (ulong)blob.Length)
                throw new BootImageException(BootError.Truncated,
                    $"the ELF note at offset {pos} of its {blob.Length}-byte note area claims namesz 0x{nameSize:x} and descsz 0x{descSize:x}, past the end of the area");
            string name = ElfImage.CString(blob.Slice((int)nameStart, (int)nameSize), 0);
            notes.Add(new ElfNote(name, type, blob.Slice((int)descStart, (int)descSize).ToArray()));
            if (next > (ulong)blob.Length) break;
            pos = (int)next;
        }
        return notes;
    }

    private static ulong Align4(uint n) => ((ulong)n + 3) & ~3ul;
}
