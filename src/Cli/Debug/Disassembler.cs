using Iced.Intel;
using Replayvisor.Engine.Boot;
using Replayvisor.Replay.Stepping;

namespace Replayvisor.Cli.Debug;

/// <summary>Disassembles guest code (Iced, Intel syntax) with addresses and branch targets named function+offset.</summary>
public sealed class Disassembler
{
    private readonly GuestSymbols _symbols;

    public Disassembler(GuestSymbols symbols) => _symbols = symbols;

    /// <summary>"0xc0104b30 <upcall+0x2>" or the bare address.</summary>
    public string Address(uint address) => _symbols.Format(address);

    /// <summary>Up to <paramref name="count"/> instructions from <paramref name="address"/>; stops at unmapped memory.</summary>
    public List<string> Lines(GuestView view, uint address, int count, bool code32, uint? marker = null)
    {
        var lines = new List<string>();
        var bytes = new byte[16 * count + 16];
        int n = 0;
        while (n < bytes.Length && view.TryRead(address + (uint)n, bytes.AsSpan(n, 1))) n++;
        if (n == 0) return lines;
        var decoder = Decoder.Create(code32 ? 32 : 16, new ByteArrayCodeReader(bytes, 0, n));
        decoder.IP = address;
        var formatter = new IntelFormatter(new Resolver(_symbols));
        formatter.Options.FirstOperandCharIndex = 8;
        var output = new StringOutput();
        while (lines.Count < count && decoder.IP < address + (ulong)n)
        {
            decoder.Decode(out var insn);
            if (insn.IsInvalid && decoder.IP > address + (ulong)n - 1) break;
            formatter.Format(insn, output);
            uint at = (uint)insn.IP;
            string hex = Convert.ToHexStringLower(bytes, (int)(at - address), insn.Length);
            lines.Add($"{(marker == at ? "=> " : "   ")}{Address(at),-36} {hex,-16} {output.ToStringAndReset()}");
        }
        return lines;
    }

    private sealed class Resolver(GuestSymbols symbols) : ISymbolResolver
    {
        public bool TryGetSymbol(in Instruction instruction, int operand, int instructionOperand, ulong address, int addressSize, out SymbolResult symbol)
        {
            symbol = default;
            if (address > uint.MaxValue || addressSize < 4 && instruction.FlowControl == FlowControl.Next) return false;
            if (instruction.FlowControl == FlowControl.Next && !instruction.HasOpKind(OpKind.Memory)) return false;
            if (symbols.Name((uint)address) is not { Length: > 0 } name) return false;
            symbol = new SymbolResult(address, $"0x{address:x} <{name}>");
            return true;
        }
    }
}
