using Xunit.Abstractions;
using Replayvisor.Engine.Boot;

namespace Replayvisor.Engine.Tests.Hardening;

/// <summary>
/// Mutated guest kernels: every input either parses and builds a domain, or is refused with a
/// one-line <see cref="BootImageException"/>. Anything else (an IndexOutOfRange, an overflow, a
/// hang, an allocation the size of a lying field) is a bug in src/Engine/Boot.
/// </summary>
public sealed class ElfFuzzTests(ITestOutputHelper output)
{
    private static readonly DomainBuildOptions Small = new() { MemoryMiB = 8 };

    /// <summary>The oracle: parse, find the Xen parameters, build; only BootImageException may stop it.</summary>
    internal static string? Check(byte[] input)
    {
        try
        {
            var elf = ElfImage.Parse(input);
            var guest = XenGuestInfoParser.Parse(elf);
            var domain = DomainBuilder.Build(guest, input, Small);
            return domain.Vcpu0.Eip == guest.Entry ? null : "the built vCPU does not start at the entry point";
        }
        catch (BootImageException ex)
        {
            return Fuzz.CheckMessage(ex.Message);
        }
    }

    [Fact]
    public void Seeds_are_valid_kernels()
    {
        foreach (var (name, image) in ElfSeeds.All)
        {
            var elf = ElfImage.Parse(image);
            var guest = XenGuestInfoParser.Parse(elf);
            DomainBuilder.Build(guest, image, Small);
            Assert.True(name.Length > 0);
        }
    }

    [Fact]
    public void Truncation_at_every_structure_boundary() => output.WriteLine($"{Fuzz.Run(Truncations(), Check)} cases");

    [Fact]
    public void Header_fields_that_lie() => output.WriteLine($"{Fuzz.Run(HeaderLies(), Check)} cases");

    [Fact]
    public void Program_and_section_header_fields_that_lie() => output.WriteLine($"{Fuzz.Run(TableLies(), Check)} cases");

    [Fact]
    public void Note_sizes_and_strings_that_lie() => output.WriteLine($"{Fuzz.Run(NoteLies(), Check)} cases");

    [Fact]
    public void Random_bit_flips_and_overwrites() => output.WriteLine($"{Fuzz.Run(RandomMutations(Fuzz.Iterations(150)), Check)} cases");

    private static IEnumerable<FuzzCase> Truncations()
    {
        foreach (var (seed, image) in ElfSeeds.All)
        {
            var cuts = new SortedSet<int>();
            for (int i = 0; i <= Math.Min(image.Length, 128); i++) cuts.Add(i);
            foreach (var (_, offset, length) in ElfSeeds.Regions(image))
                foreach (int c in new[] { offset - 1, offset, offset + 1, offset + length / 2, offset + length - 1, offset + length, offset + length + 1 })
                    if (c >= 0 && c < image.Length) cuts.Add(c);
            foreach (int c in cuts)
                yield return new($"{seed} truncated to {c}", image[..c]);
        }
    }

    private static IEnumerable<FuzzCase> HeaderLies()
    {
        foreach (var (seed, image) in ElfSeeds.All.Take(3))
        {
            for (int off = 4; off < (Fuzz.Long ? 16 : 8); off++) // e_ident[8..15] is padding the loader ignores
                foreach (byte v in new byte[] { 0, 1, 2, 3, 0xFF })
                {
                    var b = (byte[])image.Clone();
                    b[off] = v;
                    yield return new($"{seed} e_ident[{off}]={v}", b);
                }
            foreach (int off in new[] { 16, 18, 40, 42, 44, 46, 48, 50 })
                foreach (ushort v in Mutate.Interesting16)
                    yield return new($"{seed} ehdr+{off}=0x{v:X}", Mutate.Put16(image, off, v));
            foreach (int off in new[] { 20, 24, 28, 32, 36 })
                foreach (uint v in Mutate.Interesting32.Append((uint)image.Length).Append((uint)image.Length - 1))
                    yield return new($"{seed} ehdr+{off}=0x{v:X}", Mutate.Put32(image, off, v));
        }
    }

    private static IEnumerable<FuzzCase> TableLies()
    {
        var rng = new Random(Fuzz.Seed(0xE1F));
        foreach (var (seed, image) in ElfSeeds.All)
        {
            foreach (var (name, offset, length) in ElfSeeds.Regions(image))
            {
                if (!name.StartsWith("phdr", StringComparison.Ordinal) && !name.StartsWith("shdr", StringComparison.Ordinal)) continue;
                if (name.Contains('.')) continue; // note regions are NoteLies'
                for (int field = 0; field < length; field += 4)
                    foreach (uint v in Fuzz.Sample(Mutate.Interesting32, rng, 3).Append((uint)image.Length))
                        yield return new($"{seed} {name}+{field}=0x{v:X}", Mutate.Put32(image, offset + field, v));
            }
            // Structural lies: p_filesz > p_memsz, overlapping segments, a PT_NOTE turned PT_LOAD and back.
            var regions = ElfSeeds.Regions(image);
            var phdrs = regions.Where(r => r.Name.StartsWith("phdr", StringComparison.Ordinal) && !r.Name.Contains('.')).ToList();
            foreach (var (name, offset, _) in phdrs)
            {
                uint memsz = ElfSeeds.U32(image, offset + 20);
                yield return new($"{seed} {name} filesz=memsz+1", Mutate.Put32(image, offset + 16, memsz + 1));
                yield return new($"{seed} {name} type swapped", Mutate.Put32(image, offset, ElfSeeds.U32(image, offset) == Elf.PtLoad ? Elf.PtNote : Elf.PtLoad));
                foreach (var (other, otherOffset, _) in phdrs)
                {
                    if (other == name) continue;
                    var b = (byte[])image.Clone();
                    Array.Copy(image, offset, b, otherOffset, 32);
                    yield return new($"{seed} {other} copied from {name} (overlap)", b);
                }
            }
        }
    }

    private static IEnumerable<FuzzCase> NoteLies()
    {
        var rng = new Random(Fuzz.Seed(0xE1F1));
        string[] hostile = ["", "\n", "linux\nFAIL", "generic\r\n", "xen-3.0\u001b[2J", new string('A', 5000), "\u0001\u0002", "yes\n"];
        foreach (var (seed, image) in ElfSeeds.All)
        {
            foreach (var (name, offset, length) in ElfSeeds.Regions(image))
            {
                if (name.EndsWith(".head", StringComparison.Ordinal))
                    for (int field = 0; field < 12; field += 4)
                        foreach (uint v in Fuzz.Sample(Mutate.Interesting32, rng, 4))
                            yield return new($"{seed} {name}+{field}=0x{v:X}", Mutate.Put32(image, offset + field, v));
                if (name.EndsWith(".desc", StringComparison.Ordinal) && length > 0)
                {
                    // Control characters in string values (LOADER, GUEST_OS, XEN_VERSION, PAE_MODE...).
                    foreach (byte c in Fuzz.Sample(new byte[] { (byte)'\n', (byte)'\r', 0x1B, 0x7F, 0xFF, (byte)'!', (byte)'|' }, rng, 2))
                    {
                        var b = (byte[])image.Clone();
                        b[offset + length / 2] = c;
                        yield return new($"{seed} {name}[{length / 2}]=0x{c:X2}", b);
                        b = (byte[])image.Clone();
                        b[offset] = c;
                        yield return new($"{seed} {name}[0]=0x{c:X2}", b);
                    }
                }
            }
            if (seed != "legacy")
                continue;
            foreach (string h in hostile)
                foreach (string key in new[] { "GUEST_OS", "XEN_VER", "LOADER", "PAE", "FEATURES", "VIRT_BASE", "HYPERCALL_PAGE", "ELF_PADDR_OFFSET" })
                    yield return new($"legacy {key}='{h.Replace("\n", "\\n", StringComparison.Ordinal)[..Math.Min(h.Length, 20)]}'",
                        Tests.Boot.TestElf.Kernel(paddr: 0xC0100000, virtOffset: 0).Legacy(LegacyWith(key, h)).Build());
        }
        // Xen notes carrying hostile strings, and a FEATURES list of hostile names.
        foreach (string h in new[] { "linux\nx", "!bogus\nfeature", "!" + new string('x', 3000), "yes\r", "xen-2.0\n" })
            foreach (var type in new[] { XenNoteType.Loader, XenNoteType.GuestOs, XenNoteType.XenVersion, XenNoteType.PaeMode, XenNoteType.Features })
            {
                var e = Tests.Boot.TestElf.Linux(pae: false);
                e.Notes.RemoveAll(n => n.Type == (uint)type);
                if (type == XenNoteType.Loader) e.Notes.RemoveAll(n => n.Type == (uint)XenNoteType.GuestOs);
                e.Note(type, h);
                yield return new($"note {type}='{h[..Math.Min(h.Length, 12)].Replace("\n", "\\n", StringComparison.Ordinal)}'", e.Build());
            }
    }

    private static string LegacyWith(string key, string value)
    {
        var items = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["GUEST_OS"] = "linux", ["XEN_VER"] = "xen-3.0", ["VIRT_BASE"] = "0xC0000000", ["LOADER"] = "generic",
            ["VIRT_ENTRY"] = "0xC0100000", ["HYPERCALL_PAGE"] = "0x101",
        };
        items[key] = value;
        return string.Join(",", items.Select(kv => $"{kv.Key}={kv.Value}"));
    }

    private static IEnumerable<FuzzCase> RandomMutations(int perSeed)
    {
        var rng = new Random(Fuzz.Seed(0xE1F0));
        foreach (var (seed, image) in ElfSeeds.All)
        {
            var regions = ElfSeeds.Regions(image).Where(r => r.Length > 0 && r.Offset + r.Length <= image.Length).ToList();
            for (int i = 0; i < perSeed; i++)
            {
                var (name, offset, length) = regions[rng.Next(regions.Count)];
                switch (rng.Next(5))
                {
                    case 0:
                        int flips = 1 + rng.Next(8);
                        yield return new($"{seed} #{i} {flips} bit flips in {name}", Mutate.FlipBits(image, rng, offset, length, flips));
                        break;
                    case 1:
                        int n = 1 + rng.Next(4);
                        yield return new($"{seed} #{i} {n} bytes overwritten in {name}", Mutate.OverwriteBytes(image, rng, offset, length, n));
                        break;
                    case 2:
                        int at = offset + rng.Next(Math.Max(1, length - 3)) & ~3;
                        uint v = Mutate.Pick32(rng, image.Length);
                        yield return new($"{seed} #{i} u32 at {at} in {name} = 0x{v:X}", Mutate.Put32(image, at, v));
                        break;
                    case 3:
                        int f = 1 + rng.Next(32);
                        yield return new($"{seed} #{i} {f} bit flips anywhere", Mutate.FlipBits(image, rng, 0, image.Length, f));
                        break;
                    default:
                        int cut = rng.Next(image.Length);
                        var b = Mutate.FlipBits(image, rng, 0, Math.Min(image.Length, 256), 1 + rng.Next(4));
                        yield return new($"{seed} #{i} header flips then truncated to {cut}", b[..cut]);
                        break;
                }
            }
        }
    }
}
