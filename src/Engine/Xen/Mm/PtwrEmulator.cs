using Iced.Intel;
using Replayvisor.Engine.Cpu;

namespace Replayvisor.Engine.Xen.Mm;

/// <summary>
/// Writable-pagetable emulation (xen-abi.md §10.6; Xen 3.1 ptwr_do_page_fault + x86_emulate with
/// ptwr_emulated_update): decodes the faulting ring-1 instruction at CS:EIP and performs its
/// store into the read-only mapped L1 after validating the new PTE like mmu_update. Accepted:
/// naturally aligned stores inside the faulting page by mov, xchg, cmpxchg, cmpxchg8b (PAE),
/// bts/btr/btc and add/sub/and/or/xor (Xen's x86_emulate takes any memory-writing instruction;
/// others here bounce); a store narrower than a PTE is merged with the rest of the entry.
/// An invalid upper-half 4-byte PAE store (not a cmpxchg) is accepted with P cleared.
/// </summary>
internal sealed class PtwrEmulator
{
    private readonly X86Cpu _cpu;
    private readonly PagingFormat _fmt;
    private readonly PageTableRules _rules;
    private readonly byte[] _code = new byte[15];

    public PtwrEmulator(X86Cpu cpu, PagingFormat fmt, PageTableRules rules)
    {
        _cpu = cpu;
        _fmt = fmt;
        _rules = rules;
    }

    public bool TryEmulate(uint cr2, uint l1Mfn, uint rootMfn)
    {
        if (!Decode(rootMfn, out Instruction insn)) return false;
        if (insn.Op0Kind != OpKind.Memory) return false;
        int size = insn.MemorySize.GetSize();
        if (size is not (1 or 2 or 4 or 8)) return false;
        var m = insn.Mnemonic;
        uint off = EffectiveOffset(insn);
        int bit = 0;
        if (m is Mnemonic.Bts or Mnemonic.Btr or Mnemonic.Btc)
        {
            if (insn.Op1Kind == OpKind.Register)
            {
                int bitOffset = (int)SignExtend(ReadReg(insn.Op1Register), insn.Op1Register.GetSize());
                off += (uint)((bitOffset >> (size == 2 ? 4 : 5)) * size);
                bit = bitOffset & (size * 8 - 1);
            }
            else bit = (int)(insn.GetImmediate(1) & (ulong)(size * 8 - 1));
        }
        int segIndex = insn.MemorySegment - Register.ES;
        if ((uint)segIndex >= Seg.Count) return false;
        uint addr = _cpu.Segs[segIndex].Base + off;

        // Only naturally aligned accesses within the faulting page, no wider than a PTE.
        int pteSize = _fmt.EntrySize;
        if (((addr ^ cr2) & ~0xFFFu) != 0 || (addr & (uint)(size - 1)) != 0 || size > pteSize) return false;

        ulong wordPa = ((ulong)l1Mfn << 12) + (addr & 0xFFFu & ~(uint)(pteSize - 1));
        ulong full = pteSize == 8 ? _fmt.Mem.Read64(wordPa) : _fmt.Mem.Read32(wordPa);
        int shift = (int)(addr & (uint)(pteSize - 1)) * 8;
        ulong mask = size == 8 ? ulong.MaxValue : (1ul << (size * 8)) - 1;
        ulong cur = (full >> shift) & mask;
        bool locked = insn.HasLockPrefix || m is Mnemonic.Xchg or Mnemonic.Cmpxchg or Mnemonic.Cmpxchg8b;

        ulong newVal;
        switch (m)
        {
            case Mnemonic.Mov:
                newVal = Source(insn) & mask;
                break;
            case Mnemonic.Xchg:
                if (insn.Op1Kind != OpKind.Register) return false;
                newVal = ReadReg(insn.Op1Register) & mask;
                break;
            case Mnemonic.Cmpxchg:
            {
                ulong acc = ReadReg(Accumulator(size)) & mask;
                if (acc != cur)
                {
                    // Compare failed: the accumulator receives the current value, memory is untouched.
                    _cpu.SetCc(CcOp.Sub, size, (uint)(acc - cur), (uint)acc, (uint)cur);
                    WriteReg(Accumulator(size), cur);
                    return Retire(insn);
                }
                newVal = ReadReg(insn.Op1Register) & mask;
                break;
            }
            case Mnemonic.Cmpxchg8b:
            {
                ulong acc = _cpu.Eax | ((ulong)_cpu.Edx << 32);
                if (acc != cur)
                {
                    _cpu.SetArith(Fl.ZF, 0);
                    _cpu.Eax = (uint)cur;
                    _cpu.Edx = (uint)(cur >> 32);
                    return Retire(insn);
                }
                newVal = _cpu.Ebx | ((ulong)_cpu.Ecx << 32);
                break;
            }
            case Mnemonic.Bts: newVal = cur | (1ul << bit); break;
            case Mnemonic.Btr: newVal = cur & ~(1ul << bit); break;
            case Mnemonic.Btc: newVal = cur ^ (1ul << bit); break;
            case Mnemonic.And: newVal = cur & Source(insn) & mask; break;
            case Mnemonic.Or: newVal = (cur | Source(insn)) & mask; break;
            case Mnemonic.Xor: newVal = (cur ^ Source(insn)) & mask; break;
            case Mnemonic.Add: newVal = (cur + Source(insn)) & mask; break;
            case Mnemonic.Sub: newVal = (cur - Source(insn)) & mask; break;
            default: return false;
        }

        ulong nfull = (full & ~(mask << shift)) | ((newVal & mask) << shift);
        if (pteSize == 4) nfull &= 0xFFFFFFFF;
        ulong nl1e = nfull;
        if (!_rules.GetFromL1e(nl1e, FrameOwner.Domain))
        {
            // The guest wrote the halves of a PAE PTE the wrong way round: zap P and let the
            // low-half store that follows complete it.
            if (pteSize == 8 && size == 4 && (addr & 4) != 0 && !locked && (nl1e & Pte.P) != 0)
                nl1e &= ~Pte.P;
            else
                return false;
        }
        if (pteSize == 8) _fmt.Mem.Write64(wordPa, nl1e); else _fmt.Mem.Write32(wordPa, (uint)nl1e);
        _rules.PutFromL1e(full);

        // Architectural side effects of the emulated instruction.
        switch (m)
        {
            case Mnemonic.Xchg: WriteReg(insn.Op1Register, cur); break;
            case Mnemonic.Cmpxchg: _cpu.SetCc(CcOp.Sub, size, 0, (uint)cur, (uint)cur); break; // equal: ZF=1
            case Mnemonic.Cmpxchg8b: _cpu.SetArith(Fl.ZF, Fl.ZF); break;
            case Mnemonic.Bts or Mnemonic.Btr or Mnemonic.Btc:
                _cpu.SetArith(Fl.CF, ((cur >> bit) & 1) != 0 ? Fl.CF : 0);
                break;
            case Mnemonic.And or Mnemonic.Or or Mnemonic.Xor:
                _cpu.SetCc(CcOp.Logic, size, (uint)newVal, 0, 0);
                break;
            case Mnemonic.Add: _cpu.SetCc(CcOp.Add, size, (uint)newVal, (uint)cur, (uint)(Source(insn) & mask)); break;
            case Mnemonic.Sub: _cpu.SetCc(CcOp.Sub, size, (uint)newVal, (uint)cur, (uint)(Source(insn) & mask)); break;
        }
        return Retire(insn);
    }

    private bool Retire(in Instruction insn)
    {
        _cpu.Eip = (uint)insn.NextIP;
        _cpu.RetireEmulated(EmulatedInstruction.PagetableWrite);
        return true;
    }

    private bool Decode(uint rootMfn, out Instruction insn)
    {
        insn = default;
        uint eip = _cpu.Eip;
        uint lin = _cpu.Segs[Seg.CS].Base + eip;
        int n = 0;
        while (n < _code.Length)
        {
            if (!GuestPageWalk.TranslateRead(_fmt, rootMfn, lin + (uint)n, out ulong pa)) break;
            int chunk = Math.Min(_code.Length - n, 0x1000 - (int)((lin + (uint)n) & 0xFFF));
            for (int i = 0; i < chunk; i++) _code[n + i] = _fmt.Mem.Read8(pa + (ulong)i);
            n += chunk;
        }
        if (n == 0) return false;
        var decoder = Decoder.Create(_cpu.Code32 ? 32 : 16, new ByteArrayCodeReader(_code, 0, n), eip);
        decoder.Decode(out insn);
        return !insn.IsInvalid;
    }

    private ulong Source(in Instruction insn) => insn.Op1Kind switch
    {
        OpKind.Register => ReadReg(insn.Op1Register),
        OpKind.Immediate8 or OpKind.Immediate16 or OpKind.Immediate32 or OpKind.Immediate8to16 or OpKind.Immediate8to32
            => insn.GetImmediate(1),
        _ => 0,
    };

    private uint EffectiveOffset(in Instruction insn)
    {
        bool addr16 = insn.MemoryBase.GetSize() == 2 || insn.MemoryIndex.GetSize() == 2
            || (insn.MemoryBase == Register.None && insn.MemoryIndex == Register.None && insn.MemoryDisplSize == 2);
        uint off = insn.MemoryDisplacement32;
        if (insn.MemoryBase != Register.None) off += (uint)ReadReg(insn.MemoryBase);
        if (insn.MemoryIndex != Register.None) off += (uint)ReadReg(insn.MemoryIndex) * (uint)insn.MemoryIndexScale;
        return addr16 ? off & 0xFFFF : off;
    }

    private static Register Accumulator(int size) => size switch { 1 => Register.AL, 2 => Register.AX, _ => Register.EAX };

    private static ulong SignExtend(ulong v, int size) => size switch
    {
        2 => (ulong)(long)(short)v,
        4 => (ulong)(long)(int)v,
        _ => v,
    };

    private ulong ReadReg(Register r)
    {
        if (r is >= Register.AH and <= Register.BH) return (_cpu.Gpr[r - Register.AH] >> 8) & 0xFF;
        int size = r.GetSize();
        uint v = _cpu.Gpr[r.GetFullRegister32() - Register.EAX];
        return size switch { 1 => v & 0xFF, 2 => v & 0xFFFF, _ => v };
    }

    private void WriteReg(Register r, ulong value)
    {
        uint v = (uint)value;
        if (r is >= Register.AH and <= Register.BH)
        {
            int i = r - Register.AH;
            _cpu.Gpr[i] = (_cpu.Gpr[i] & 0xFFFF00FF) | ((v & 0xFF) << 8);
            return;
        }
        int idx = r.GetFullRegister32() - Register.EAX;
        _cpu.Gpr[idx] = r.GetSize() switch
        {
            1 => (_cpu.Gpr[idx] & 0xFFFFFF00) | (v & 0xFF),
            2 => (_cpu.Gpr[idx] & 0xFFFF0000) | (v & 0xFFFF),
            _ => v,
        };
    }
}
