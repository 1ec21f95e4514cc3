using System.Buffers.Binary;
using System.Text;
using Replayvisor.Engine.Boot;

namespace Replayvisor.Engine.Tests.Boot;

/// <summary>A tiny ELF32 writer for tests: PT_LOAD segments, Xen notes (as PT_NOTE or SHT_NOTE), extra sections.</summary>
internal sealed class TestElf
{
    public byte Class = 1, Data = 1;
    public ushort Machine = 3, Type = 2;
    public uint Entry;
    public readonly List<(uint Paddr, uint Vaddr, byte[] Data, uint MemSize)> Loads = [];
    public readonly List<(string Name, uint Type, byte[] Desc)> Notes = [];
    public bool NotesInSegment = true, NotesInSection;
    /// <summary>Emit the PT_NOTE with p_offset 0 (libelf skips those).</summary>
    public bool NoteSegmentAtOffsetZero;
    public readonly List<(string Name, uint Type, byte[] Data, uint Link)> Sections = [];

    public TestElf Note(XenNoteType type, byte[] desc, string name = "Xen") { Notes.Add((name, (uint)type, desc)); return this; }
    public TestElf Note(XenNoteType type, string s) => Note(type, Str(s));
    public TestElf Note(XenNoteType type, uint v) => Note(type, BitConverter.GetBytes(v));

    public static byte[] Str(string s) => Encoding.ASCII.GetBytes(s + "\0");

    public TestElf Legacy(string text) { Sections.Add(("__xen_guest", 1, Str(text), 0)); return this; }

    /// <summary>A Linux-like kernel: p_paddr 0x100000, 3 pages of file data + 2 pages of bss, entry at its start.</summary>
    public static TestElf Kernel(uint paddr = 0x100000, uint virtOffset = 0xC0000000)
    {
        var e = new TestElf { Entry = paddr + virtOffset };
        var text = new byte[3 * 4096];
        for (int i = 0; i < text.Length; i++) text[i] = (byte)(i * 7 + 1);
        e.Loads.Add((paddr, paddr + virtOffset, text, 5 * 4096));
        return e;
    }

    /// <summary>Kernel() with the notes Linux 2.6.23 carries (§6).</summary>
    public static TestElf Linux(bool pae) => Kernel()
        .Note(XenNoteType.GuestOs, "linux").Note(XenNoteType.GuestVersion, "2.6")
        .Note(XenNoteType.XenVersion, "xen-3.0").Note(XenNoteType.VirtBase, 0xC0000000u)
        .Note(XenNoteType.Entry, 0xC0100000u).Note(XenNoteType.HypercallPage, 0xC0101000u)
        .Note(XenNoteType.Features, "!writable_page_tables|pae_pgdir_above_4gb")
        .Note(XenNoteType.PaeMode, pae ? "yes" : "no").Note(XenNoteType.Loader, "generic");

    public byte[] Build()
    {
        var body = new List<byte>();
        var notes = NoteBlob();
        bool notePh = NotesInSegment && notes.Length > 0;
        int phnum = Loads.Count + (notePh ? 1 : 0);
        int dataStart = 52 + 32 * phnum;
        int Place(byte[] d) { while ((dataStart + body.Count) % 4 != 0) body.Add(0); int o = dataStart + body.Count; body.AddRange(d); return o; }

        var loadOffsets = Loads.Select(l => Place(l.Data)).ToList();
        int noteOffset = notes.Length > 0 ? Place(notes) : 0;
        var sections = new List<(string Name, uint Type, int Offset, int Size, uint Link)>();
        if (NotesInSection && notes.Length > 0) sections.Add((".note.Xen", 7, noteOffset, notes.Length, 0));
        foreach (var s in Sections) sections.Add((s.Name, s.Type, Place(s.Data), s.Data.Length, s.Link));
        var shstr = new List<byte> { 0 };
        var nameOffsets = new List<int>();
        foreach (var s in sections.Select(s => s.Name).Append(".shstrtab")) { nameOffsets.Add(shstr.Count); shstr.AddRange(Str(s)); }
        int shstrOffset = Place([.. shstr]);
        sections.Add((".shstrtab", 3, shstrOffset, shstr.Count, 0));
        int shoff = Place([]);
        var file = new byte[shoff + 40 * (sections.Count + 1)];
        body.CopyTo(file, dataStart);

        var h = file.AsSpan();
        h[0] = 0x7F; h[1] = (byte)'E'; h[2] = (byte)'L'; h[3] = (byte)'F'; h[4] = Class; h[5] = Data; h[6] = 1;
        W16(h, 16, Type); W16(h, 18, Machine); W32(h, 20, 1); W32(h, 24, Entry); W32(h, 28, 52); W32(h, 32, (uint)shoff);
        W16(h, 40, 52); W16(h, 42, 32); W16(h, 44, (ushort)phnum); W16(h, 46, 40);
        W16(h, 48, (ushort)(sections.Count + 1)); W16(h, 50, (ushort)sections.Count);
        for (int i = 0; i < Loads.Count; i++)
            Phdr(h[(52 + 32 * i)..], 1, loadOffsets[i], Loads[i].Vaddr, Loads[i].Paddr, Loads[i].Data.Length, Loads[i].MemSize);
        if (notePh)
            Phdr(h[(52 + 32 * Loads.Count)..], 4, NoteSegmentAtOffsetZero ? 0 : noteOffset, 0, 0, notes.Length, (uint)notes.Length);
        for (int i = 0; i < sections.Count; i++)
        {
            var s = h[(shoff + 40 * (i + 1))..];
            W32(s, 0, (uint)nameOffsets[i]); W32(s, 4, sections[i].Type); W32(s, 16, (uint)sections[i].Offset);
            W32(s, 20, (uint)sections[i].Size); W32(s, 24, sections[i].Link); W32(s, 32, 4);
            if (sections[i].Type == 2) W32(s, 36, 16);
        }
        return file;
    }

    private byte[] NoteBlob()
    {
        var b = new List<byte>();
        foreach (var (name, type, desc) in Notes)
        {
            byte[] n = Str(name);
            b.AddRange(BitConverter.GetBytes(n.Length)); b.AddRange(BitConverter.GetBytes(desc.Length)); b.AddRange(BitConverter.GetBytes(type));
            b.AddRange(n); while (b.Count % 4 != 0) b.Add(0);
            b.AddRange(desc); while (b.Count % 4 != 0) b.Add(0);
        }
        return [.. b];
    }

    private static void Phdr(Span<byte> p, uint type, int off, uint vaddr, uint paddr, int filesz, uint memsz)
    {
        W32(p, 0, type); W32(p, 4, (uint)off); W32(p, 8, vaddr); W32(p, 12, paddr);
        W32(p, 16, (uint)filesz); W32(p, 20, memsz); W32(p, 24, 7); W32(p, 28, 4096);
    }

    private static void W16(Span<byte> b, int o, ushort v) => BinaryPrimitives.WriteUInt16LittleEndian(b[o..], v);
    private static void W32(Span<byte> b, int o, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(b[o..], v);
}
