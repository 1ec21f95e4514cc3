namespace Replayvisor.Engine.Boot;

/// <summary>ELF32 constants used by the loader (System V gABI).</summary>
public static class Elf
{
    public const int HeaderSize = 52;
    public const int ProgramHeaderSize = 32;
    public const int SectionHeaderSize = 40;

    public const byte ClassElf32 = 1;
    public const byte DataLittleEndian = 1;
    public const ushort TypeExec = 2;
    public const ushort MachineI386 = 3;

    public const uint PtLoad = 1;
    public const uint PtNote = 4;

    public const uint ShtSymtab = 2;
    public const uint ShtStrtab = 3;
    public const uint ShtNote = 7;
}

public readonly record struct ElfProgramHeader(
    uint Type, uint Offset, uint VirtualAddress, uint PhysicalAddress,
    uint FileSize, uint MemorySize, uint Flags, uint Align);

public readonly record struct ElfSectionHeader(
    string Name, uint NameOffset, uint Type, uint Flags, uint Address, uint Offset,
    uint Size, uint Link, uint Info, uint AddressAlign, uint EntrySize);

/// <summary>One ELF note: owner name, type and descriptor bytes.</summary>
public sealed record ElfNote(string Name, uint Type, byte[] Desc);
