using Iced.Intel;
using Replayvisor.Engine.Cpu;

namespace Replayvisor.Replay.Stepping;

/// <summary>One memory range an instruction is about to read or write (linear address).</summary>
public readonly record struct MemoryTouch(uint Address, int Length, bool Reads, bool Writes);

/// <summary>
/// Decodes the instruction at the current CS:EIP with Iced and lists the linear memory it will
/// read and write (explicit operands and implicit stack and string accesses), computed from the
/// current registers and segment bases. Used for read and access watchpoints, which no value
/// comparison can see.
/// </summary>
public sealed class InstructionAccesses
{
    private readonly X86Cpu _cpu;
    private readonly GuestView _view;
    private readonly InstructionInfoFactory _info = new();
    private readonly byte[] _bytes = new byte[15];

    public InstructionAccesses(X86Cpu cpu, GuestView view)
    {
        _cpu = cpu;
        _view = view;
    }

    /// <summary>Decodes the next instruction; false if its bytes are unmapped.</summary>
    public bool TryDecode(uint linear, bool code32, out Instruction insn)
    {
        insn = default;
        int n = 0;
        while (n < _bytes.Length && _view.TryRead(linear + (uint)n, _bytes.AsSpan(n, 1))) n++;
        if (n == 0) return false;
        var decoder = Decoder.Create(code32 ? 32 : 16, new ByteArrayCodeReader(_bytes, 0, n));
        decoder.IP = linear;
        decoder.Decode(out insn);
        return !insn.IsInvalid;
    }

    /// <summary>The memory the instruction at CS:EIP will touch, or empty if it does not decode.</summary>
    public List<MemoryTouch> Next()
    {
        var touches = new List<MemoryTouch>();
        var cs = _cpu.Segs[Seg.CS];
        if (!TryDecode(cs.Base + _cpu.Eip, cs.Big, out var insn)) return touches;
        var info = _info.GetInfo(insn);
        foreach (var m in info.GetUsedMemory())
        {
            if (m.Access == OpAccess.NoMemAccess) continue;
            if (!m.TryGetVirtualAddress(0, out ulong va, RegisterValue)) continue;
            bool reads = m.Access is OpAccess.Read or OpAccess.CondRead or OpAccess.ReadWrite or OpAccess.ReadCondWrite;
            bool writes = m.Access is OpAccess.Write or OpAccess.CondWrite or OpAccess.ReadWrite or OpAccess.ReadCondWrite;
            int size = Math.Max(1, m.MemorySize.GetSize());
            touches.Add(new MemoryTouch((uint)va, size, reads, writes));
        }
        return touches;
    }

    private bool RegisterValue(Register register, int elementIndex, int elementSize, out ulong value)
    {
        value = 0;
        if (register >= Register.ES && register <= Register.GS)
        {
            value = _cpu.Segs[register - Register.ES].Base;
            return true;
        }
        var full = register.GetFullRegister32();
        if (full < Register.EAX || full > Register.EDI) return false;
        uint v = _cpu.Gpr[full - Register.EAX];
        value = register.GetSize() switch { 2 => (ushort)v, 1 => (byte)v, _ => v };
        return true;
    }
}
