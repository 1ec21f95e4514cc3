using Iced.Intel;
using Replayvisor.Engine.Cpu.Decode;

namespace Replayvisor.Engine.Cpu.Handlers;

/// <summary>
/// int n, int3, into, int1/icebp (SDM vol. 2 INT n/INTO/INT3/INT1). The instruction retires and the host
/// delivers the event: int n (CD ib, including CD 03) is a <see cref="EventKind.SoftwareInterrupt"/>; int3 (CC)
/// and into are <see cref="EventKind.Trap"/> with vectors 3 and 4 (a host applies the gate DPL check to them
/// as to int n); int1 (F1) is a #DB trap with no DPL check.
/// </summary>
internal static unsafe class Interrupts
{
    public static delegate*<X86Cpu, ref DecodedInsn, void> Select(ref DecodedInsn d)
    {
        switch (d.Insn.Mnemonic)
        {
            case Mnemonic.Int: d.Imm = d.Insn.Immediate8; return &IntN;
            case Mnemonic.Int3: return &Int3;
            case Mnemonic.Into: return &Into;
            case Mnemonic.Int1: return &Int1;
            default: return null;
        }
    }

    private static void IntN(X86Cpu c, ref DecodedInsn d) => c.RaiseAfter((byte)d.Imm, EventKind.SoftwareInterrupt);
    private static void Int3(X86Cpu c, ref DecodedInsn d) => c.RaiseAfter(Vectors.BP, EventKind.Trap);

    private static void Into(X86Cpu c, ref DecodedInsn d)
    {
        if (c.OF) c.RaiseAfter(Vectors.OF, EventKind.Trap);
    }

    private static void Int1(X86Cpu c, ref DecodedInsn d) => c.RaiseAfter(Vectors.DB, EventKind.Trap);
}
