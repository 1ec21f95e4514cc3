using Iced.Intel;
using Replayvisor.Engine.Cpu.Decode;

namespace Replayvisor.Engine.Cpu;

/// <summary>
/// DR7 instruction and data breakpoints and the MOV SS / POP SS shadow (SDM vol. 3 §17.2.4-§17.2.6,
/// §17.3.1.1-§17.3.1.4, §6.8.3; vol. 2 MOV, POP). Kept to small hooks in the run loop: while any
/// breakpoint is enabled the loop runs one instruction per block (so no tier runs compiled code
/// past a hit) and checks CS:EIP before each (<see cref="InstructionBreakpoint"/>). Pages holding an
/// enabled data breakpoint are kept out of the TLB, so every access to them takes the checked
/// path, which notes hits (<see cref="NoteDataAccess"/>); the fast paths pay nothing. The #DB
/// trap follows the instruction (for a rep string, the iteration) that hit. A single-step or
/// data #DB after an instruction that loads SS, and an event upcall, are held back until the next
/// instruction has executed (<see cref="ShadowsSingleStep"/>, <see cref="InInterruptShadow"/>).
/// </summary>
public sealed partial class X86Cpu
{
    /// <summary>Data breakpoints were enabled at the last check: their pages are kept out of the TLB.</summary>
    private bool _dataBreakpointsActive;
    /// <summary>DR7 (enables, R/W, LEN) and DR0-DR3 when <see cref="_breakpointPages"/> was computed.</summary>
    private readonly uint[] _dataBreakpointKey = new uint[5];
    private readonly uint[] _breakpointPages = new uint[4];
    private int _breakpointPageCount;

    /// <summary>B0-B3 of the data breakpoints hit by the instruction executing (or, after an SS load, the one before it).</summary>
    internal uint DataBreakpointHits;

    /// <summary>The instruction count just after the last MOV SS / POP SS retired: until another instruction retires, no event upcall and no #DB trap.</summary>
    internal ulong InterruptShadowAt = ulong.MaxValue;

    /// <summary>
    /// The last instruction retired was MOV SS or POP SS: interrupts (here: Xen's event upcalls) and
    /// debug traps wait until the next instruction has executed (SDM vol. 3 §6.8.3).
    /// </summary>
    public bool InInterruptShadow => InterruptShadowAt == _icount;

    /// <summary>Called by MOV SS and POP SS once SS is loaded (before the instruction is counted).</summary>
    internal void BeginInterruptShadow() => InterruptShadowAt = _icount + 1;

    /// <summary>DR7's LENn field as a byte count: 00 1, 01 2, 11 4, 10 8 (SDM vol. 3 §17.2.4, table 17-2).</summary>
    private static uint BreakpointLength(uint d7, int i) => ((d7 >> (18 + i * 4)) & 3) switch { 0 => 1, 1 => 2, 3 => 4, _ => 8 };

    /// <summary>Breakpoint i is enabled (L or G) with R/W 01 (writes) or 11 (reads and writes).</summary>
    private static bool IsDataBreakpoint(uint d7, int i) => ((d7 >> (i * 2)) & 3) != 0 && ((d7 >> (16 + i * 4)) & 1) != 0;

    /// <summary>
    /// Checked once per block while DR7 enables anything: true when a data breakpoint is enabled.
    /// When the enabled set or an address changed, the TLB is flushed so that the breakpoints'
    /// pages (an aligned 1-8 byte range never crosses a page) are refilled only through the checked path.
    /// </summary>
    private bool DataBreakpointsArmed()
    {
        uint d7 = Dr[7];
        bool any = false;
        for (int i = 0; i < 4; i++) any |= IsDataBreakpoint(d7, i);
        if (!any) { _dataBreakpointsActive = false; return false; }
        if (_dataBreakpointsActive && _dataBreakpointKey[4] == (d7 & 0xFFFF00FF)
            && _dataBreakpointKey[0] == Dr[0] && _dataBreakpointKey[1] == Dr[1] && _dataBreakpointKey[2] == Dr[2] && _dataBreakpointKey[3] == Dr[3])
            return true;
        for (int i = 0; i < 4; i++) _dataBreakpointKey[i] = Dr[i];
        _dataBreakpointKey[4] = d7 & 0xFFFF00FF;
        _dataBreakpointsActive = true;
        ComputeBreakpointPages();
        FlushTlb();
        return true;
    }

    private void ComputeBreakpointPages()
    {
        uint d7 = _dataBreakpointKey[4];
        _breakpointPageCount = 0;
        for (int i = 0; i < 4; i++)
            if (IsDataBreakpoint(d7, i)) _breakpointPages[_breakpointPageCount++] = (_dataBreakpointKey[i] & ~(BreakpointLength(d7, i) - 1)) >> 12;
    }

    /// <summary>Which pages were kept out of the TLB (for snapshots: a restored TLB must be read under the same set).</summary>
    internal (bool Active, uint[] Key) DataBreakpointState => (_dataBreakpointsActive, (uint[])_dataBreakpointKey.Clone());

    internal void RestoreDataBreakpointState(bool active, uint[] key)
    {
        key.CopyTo(_dataBreakpointKey, 0);
        _dataBreakpointsActive = active;
        ComputeBreakpointPages();
    }

    /// <summary>A page that must stay out of the TLB (it holds an enabled data breakpoint).</summary>
    private bool IsBreakpointPage(uint lin)
    {
        for (int i = 0; i < _breakpointPageCount; i++)
            if (_breakpointPages[i] == lin >> 12) return true;
        return false;
    }

    /// <summary>
    /// A data access that completed on the checked path: every enabled data breakpoint whose aligned
    /// range overlaps [lin, lin+size) and whose R/W matches sets its hit bit (SDM vol. 3 §17.2.5:
    /// the low address bits are ignored to the breakpoint's length, and any byte of the access counts).
    /// </summary>
    private void NoteDataAccess(uint lin, int size, bool write)
    {
        uint d7 = Dr[7];
        for (int i = 0; i < 4; i++)
        {
            if (!IsDataBreakpoint(d7, i) || (!write && ((d7 >> (16 + i * 4)) & 3) == 1)) continue;
            uint len = BreakpointLength(d7, i);
            ulong start = Dr[i] & ~(len - 1);
            if (start < (ulong)lin + (uint)size && lin < start + len) DataBreakpointHits |= 1u << i;
        }
    }

    /// <summary>
    /// After an instruction that hit a data breakpoint: #DB as a trap, DR6 B0-B3 naming the hits
    /// (BS too when TF single-stepped the same instruction). After an SS load the hits wait for the next instruction.
    /// </summary>
    private void DataBreakpointTrap(bool singleStep, in Instruction insn)
    {
        if (ShadowsSingleStep(insn)) return;
        Dr[6] = (Dr[6] & ~0xFu) | DataBreakpointHits | (singleStep ? 0x4000u : 0);
        DataBreakpointHits = 0;
        var e = new CpuEvent(Vectors.DB, EventKind.Trap, false, 0, InsnEip, 0);
        DeliverToHost(e);
        ClearFault();
    }
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
