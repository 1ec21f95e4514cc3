using System.Buffers.Binary;
using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Tests.Boot;

namespace Replayvisor.Engine.Tests.Hardening;

/// <summary>Valid Xen PV kernels to mutate, and where their structures lie.</summary>
internal static class ElfSeeds
{
    public static IReadOnlyList<(string Name, byte[] Image)> All { get; } = Make();

    private static List<(string, byte[])> Make()
    {
        var seeds = new List<(string, byte[])>
        {
            ("linux", TestElf.Linux(pae: false).Build()),
            ("linux-pae-sectionnotes", WithSectionNotes(TestElf.Linux(pae: true)).Build()),
            ("sectionnotes-only", SectionNotesOnly(TestElf.Linux(pae: false)).Build()),
            ("legacy", TestElf.Kernel(paddr: 0xC0100000, virtOffset: 0).Legacy(
                "GUEST_OS=linux,GUEST_VER=2.6,XEN_VER=xen-3.0,VIRT_BASE=0xC0000000,VIRT_ENTRY=0xC0100000,HYPERCALL_PAGE=0x101,PAE=yes[extended-cr3],LOADER=generic,BSD_SYMTAB").Build()),
            ("bsd-symtab", WithSymtab(TestElf.Linux(pae: true).Note(XenNoteType.BsdSymtab, "yes")).Build()),
            ("two-segments", TwoSegments().Build()),
        };
        seeds.AddRange(GuestBuildElfs());
        return seeds;
    }

    private static TestElf WithSectionNotes(TestElf e) { e.NotesInSection = true; return e; }
    private static TestElf SectionNotesOnly(TestElf e) { e.NotesInSection = true; e.NotesInSegment = false; return e; }

    private static TestElf WithSymtab(TestElf e)
    {
        var sym = new byte[48];
        sym[16] = 1; BitConverter.GetBytes(0xC0100000u).CopyTo(sym, 20);
        e.Sections.Add((".symtab", Elf.ShtSymtab, sym, 2)); // TestElf numbers extra sections from 1
        e.Sections.Add((".strtab", Elf.ShtStrtab, "\0start\0"u8.ToArray(), 0));
        return e;
    }

    private static TestElf TwoSegments()
    {
        var e = TestElf.Linux(pae: false);
        var data = new byte[4096 + 100];
        for (int i = 0; i < data.Length; i++) data[i] = (byte)(i * 13);
        e.Loads.Add((0x106000, 0xC0106000, data, 3 * 4096));
        return e;
    }

    /// <summary>The kernels `make -C guests` built, when present (the tests never require them).</summary>
    private static IEnumerable<(string, byte[])> GuestBuildElfs()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var build = Path.Combine(dir.FullName, "guests", "build");
            if (!Directory.Exists(build)) continue;
            // A handful, smallest first, so CI time stays bounded.
            return Directory.GetFiles(build, "*.elf").Select(f => new FileInfo(f)).Where(f => f.Length < 256 * 1024)
                .OrderBy(f => f.Length).ThenBy(f => f.Name, StringComparer.Ordinal).Take(3)
                .Select(f => ("guest:" + f.Name, File.ReadAllBytes(f.FullName))).ToList();
        }
        return [];
    }

    /// <summary>Named byte ranges of an image: the ELF header, each program and section header, each note's fields.</summary>
    public static List<(string Name, int Offset, int Length)> Regions(byte[] b)
    {
        var r = new List<(string, int, int)> { ("ehdr", 0, Elf.HeaderSize) };
        int phoff = (int)U32(b, 28), phnum = U16(b, 44), shoff = (int)U32(b, 32), shnum = U16(b, 48);
        for (int i = 0; i < phnum; i++)
        {
            int p = phoff + 32 * i;
            r.Add(($"phdr{i}", p, 32));
            uint type = U32(b, p), off = U32(b, p + 4), size = U32(b, p + 16);
            if (type == Elf.PtNote) AddNotes(r, b, (int)off, (int)size, $"phdr{i}.");
            else r.Add(($"seg{i}", (int)off, (int)size));
        }
        for (int i = 0; i < shnum; i++)
        {
            int s = shoff + 40 * i;
            r.Add(($"shdr{i}", s, 40));
            uint type = U32(b, s + 4), off = U32(b, s + 16), size = U32(b, s + 20);
            if (i == 0) continue;
            if (type == Elf.ShtNote) AddNotes(r, b, (int)off, (int)size, $"shdr{i}.");
            else r.Add(($"sec{i}", (int)off, (int)size));
        }
        return r;
    }

    private static void AddNotes(List<(string, int, int)> r, byte[] b, int start, int size, string prefix)
    {
        r.Add((prefix + "notes", start, size));
        int pos = start, n = 0;
        while (pos + 12 <= start + size)
        {
            int nameSize = (int)U32(b, pos), descSize = (int)U32(b, pos + 4);
            r.Add(($"{prefix}note{n}.head", pos, 12));
            int name = pos + 12, desc = name + ((nameSize + 3) & ~3);
            r.Add(($"{prefix}note{n}.name", name, nameSize));
            r.Add(($"{prefix}note{n}.desc", desc, descSize));
            pos = desc + ((descSize + 3) & ~3);
            n++;
        }
    }

    public static uint U32(byte[] b, int o) => BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(o));
    public static ushort U16(byte[] b, int o) => BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(o));
}
