using Iced.Intel;
using Replayvisor.Engine.Cpu.Decode;

namespace Replayvisor.Engine.Cpu;

/// <summary>
/// DR7 instruction breakpoints and the MOV SS / POP SS shadow on single-step (SDM vol. 3 §17.2.4,
/// §17.3.1.1, §17.3.1.4; vol. 2 MOV, POP). Kept to two small hooks in the run loop: while an
/// instruction breakpoint is enabled the loop runs one instruction per block and checks CS:EIP
/// before each (<see cref="InstructionBreakpoint"/>); a single-step #DB after an instruction that
/// loads SS is held back until the next instruction has executed (<see cref="ShadowsSingleStep"/>).
/// Data breakpoints are not modelled.
/// </summary>
public sealed partial class X86Cpu
{
    /// <summary>DR7 enables at least one breakpoint (L or G bit) whose R/W field is 00 (instruction execution).</summary>
    internal bool InstructionBreakpointsArmed
    {
        get
        {
            uint d7 = Dr[7];
            if ((d7 & 0xFF) == 0) return false;
            for (int i = 0; i < 4; i++)
                if (((d7 >> (i * 2)) & 3) != 0 && ((d7 >> (16 + i * 4)) & 3) == 0) return true;
            return false;
        }
    }

    /// <summary>
    /// Before the instruction at CS:EIP: every enabled instruction breakpoint at its linear address sets
    /// its B bit in DR6 and raises #DB as a fault (EIP at the instruction), unless EFLAGS.RF is set.
    /// </summary>
    private bool InstructionBreakpoint()
    {
        if ((FlagsReg & Fl.RF) != 0) return false;
        uint lin = Segs[Seg.CS].Base + Eip, d7 = Dr[7], hits = 0;
        for (int i = 0; i < 4; i++)
            if (((d7 >> (i * 2)) & 3) != 0 && ((d7 >> (16 + i * 4)) & 3) == 0 && Dr[i] == lin) hits |= 1u << i;
        if (hits == 0) return false;
        InsnEip = Eip;
        Dr[6] = (Dr[6] & ~0xFu) | hits;
        RaiseFault(Vectors.DB, 0);
        return true;
    }

    /// <summary>The host's (a debugger's) breakpoints by linear and by physical address, and the pages they are on; null when none are set.</summary>
    private HashSet<uint>? _hostBreaks, _hostBreakPages;
    private HashSet<ulong>? _hostBreaksPhys, _hostBreakFrames;
    private Func<bool>? _hostBreakReached;

    /// <summary>
    /// Sets the host's (a replay debugger's, not the guest's) instruction breakpoints: before the
    /// instruction at one of these linear addresses (CS base + EIP) or machine-physical addresses
    /// runs, <paramref name="reached"/> is called; when it returns true the run ends there as if that
    /// count had been its stop count (<see cref="StopAtCurrentCount"/>). Blocks run whole, compiled
    /// or not, except a block holding one of the addresses, which runs up to it. Guest-visible state
    /// is never touched, so where the run stops does not change what it computes. Null or empty
    /// sets clear them.
    /// </summary>
    public void SetHostBreakpoints(IEnumerable<uint>? linear, IEnumerable<ulong>? physical, Func<bool>? reached)
    {
        var lin = linear == null ? [] : new HashSet<uint>(linear);
        var phys = physical == null ? [] : new HashSet<ulong>(physical);
        bool any = reached != null && (lin.Count > 0 || phys.Count > 0);
        _hostBreaks = any ? lin : null;
        _hostBreakPages = any ? [.. lin.Select(a => a >> 12)] : null;
        _hostBreaksPhys = any ? phys : null;
        _hostBreakFrames = any ? [.. phys.Select(a => a >> 12)] : null;
        _hostBreakReached = any ? reached : null;
    }

    /// <summary>
    /// How many instructions of <paramref name="b"/> (which starts at EIP) may run before a host
    /// breakpoint: 0 when the host stops at its first instruction. A block never leaves the page it
    /// starts on (its last instruction may end on the next), so only blocks on a breakpoint page are
    /// scanned; an instruction's physical address is the block's plus its offset in the block.
    /// </summary>
    private int HostBreakCap(Block b)
    {
        uint csBase = Segs[Seg.CS].Base;
        bool linearPage = _hostBreakPages!.Contains((csBase + b.Eip) >> 12);
        bool physicalPage = _hostBreakFrames!.Contains(b.Phys >> 12);
        if (!linearPage && !physicalPage) return int.MaxValue;
        for (int i = 0; i < b.Count; i++)
        {
            uint eip = b.Insns[i].Eip;
            if (!(linearPage && _hostBreaks!.Contains(csBase + eip)) && !(physicalPage && _hostBreaksPhys!.Contains(b.Phys + (eip - b.Eip)))) continue;
            if (i > 0) return i;
            if (_hostBreakReached!())
            {
                _stopAt = Math.Min(_stopAt, _icount);
                return 0;
            }
        }
        return int.MaxValue;
    }

    /// <summary>MOV SS and POP SS inhibit the single-step #DB that would follow them (SDM vol. 2 MOV: "the processor inhibits ... debug exceptions until the next instruction").</summary>
    private static bool ShadowsSingleStep(in Instruction insn) =>
        insn.Op0Kind == OpKind.Register && insn.Op0Register == Register.SS && insn.Mnemonic is Mnemonic.Mov or Mnemonic.Pop;
}
