using System.Buffers.Binary;
using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Memory;

namespace Replayvisor.Replay.Stepping;

/// <summary>
/// A debugger's read-only view of guest memory: linear addresses are translated by walking the
/// current page tables in software (SDM vol. 3 §4.3 32-bit paging, §4.4 PAE paging), without
/// setting accessed/dirty bits, filling the TLB or raising faults, so looking never changes the replay.
/// A view of a vCPU that is not running (<see cref="VcpuContexts"/>) walks that vCPU's page tables:
/// the CR0/CR3/CR4 of its parked context, not the CPU's.
/// </summary>
public sealed class GuestView
{
    private const ulong PaeFrame = 0x000F_FFFF_FFFF_F000;
    private readonly X86Cpu _cpu;
    private readonly CpuSnapshot? _context;

    public GuestView(X86Cpu cpu) => _cpu = cpu;

    /// <summary>Memory as a parked vCPU sees it: <paramref name="context"/>'s paging registers over <paramref name="cpu"/>'s memory.</summary>
    public GuestView(X86Cpu cpu, CpuSnapshot context)
    {
        _cpu = cpu;
        _context = context;
    }

    private PhysicalMemory Ram => _cpu.Memory;
    private uint Cr0 => _context?.Cr0 ?? _cpu.Cr0;
    private uint Cr3 => _context?.Cr3 ?? _cpu.Cr3;
    private uint Cr4 => _context?.Cr4 ?? _cpu.Cr4;

    /// <summary>The machine-physical address of a linear address under the current CR3, or false if it is not mapped.</summary>
    public bool TryTranslate(uint linear, out ulong physical)
    {
        physical = 0;
        if ((Cr0 & Cr0Bits.PG) == 0) { physical = linear; return Ram.Contains(linear, 1); }
        if ((Cr4 & Cr4Bits.PAE) != 0)
        {
            ulong pdpte = Ram.Read64((Cr3 & ~0x1Fu) + (ulong)(linear >> 30) * 8);
            if ((pdpte & 1) == 0) return false;
            ulong pde = Ram.Read64((pdpte & PaeFrame) + (ulong)((linear >> 21) & 0x1FF) * 8);
            if ((pde & 1) == 0) return false;
            if ((pde & 0x80) != 0) physical = (pde & PaeFrame & ~0x1F_FFFFul) | (linear & 0x1F_FFFFu);
            else
            {
                ulong pte = Ram.Read64((pde & PaeFrame) + (ulong)((linear >> 12) & 0x1FF) * 8);
                if ((pte & 1) == 0) return false;
                physical = (pte & PaeFrame) | (linear & 0xFFFu);
            }
        }
        else
        {
            uint pde = Ram.Read32((Cr3 & ~0xFFFu) + (linear >> 22) * 4);
            if ((pde & 1) == 0) return false;
            if ((pde & 0x80) != 0 && (Cr4 & Cr4Bits.PSE) != 0) physical = (pde & 0xFFC0_0000u) | (linear & 0x3F_FFFFu);
            else
            {
                uint pte = Ram.Read32((pde & ~0xFFFu) + ((linear >> 12) & 0x3FF) * 4);
                if ((pte & 1) == 0) return false;
                physical = (pte & ~0xFFFu) | (linear & 0xFFFu);
            }
        }
        return Ram.Contains(physical, 1);
    }

    /// <summary>Reads linear memory; false (and nothing read) if any byte is unmapped.</summary>
    public bool TryRead(uint linear, Span<byte> into)
    {
        for (int i = 0; i < into.Length;)
        {
            uint a = linear + (uint)i;
            if (!TryTranslate(a, out ulong pa)) return false;
            int n = Math.Min(into.Length - i, 0x1000 - (int)(a & 0xFFF));
            Ram.ReadBytes(pa, into.Slice(i, n));
            i += n;
        }
        return true;
    }

    /// <summary>Reads up to 8 bytes as a little-endian value.</summary>
    public bool TryReadValue(uint linear, int length, out ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        b.Clear();
        value = 0;
        if (length is < 1 or > 8 || !TryRead(linear, b[..length])) return false;
        value = BinaryPrimitives.ReadUInt64LittleEndian(b);
        return true;
    }

    /// <summary>The linear address of the next instruction (CS base + EIP).</summary>
    public uint Pc => _context is { } c ? c.Segs[Seg.CS].Base + c.Eip : _cpu.Segs[Seg.CS].Base + _cpu.Eip;
}
