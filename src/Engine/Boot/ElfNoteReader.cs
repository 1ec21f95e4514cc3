using System.Buffers.Binary;

namespace Replayvisor.Engine.Boot;

/// <summary>Splits a PT_NOTE segment or SHT_NOTE section into notes (namesz, descsz, type, name, desc; each padded to 4).</summary>
public static class ElfNoteReader
{
    /// <summary>All well-formed notes in <paramref name="blob"/>; a truncated tail is ignored, as libelf does.</summary>
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
            if (descStart + descSize > (ulong)blob.Length) break;
            string name = ElfImage.CString(blob.Slice((int)nameStart, (int)nameSize), 0);
            notes.Add(new ElfNote(name, type, blob.Slice((int)descStart, (int)descSize).ToArray()));
            if (next > (ulong)blob.Length) break;
            pos = (int)next;
        }
        return notes;
    }

    private static ulong Align4(uint n) => ((ulong)n + 3) & ~3ul;
}
